// Rendering a view in a test as the shell would: a query client, a router at a URL, the caller (MeContext) and
// the command palette's context. And a fake API: `stubApi` answers fetch by route, and records every request.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { render } from '@testing-library/react'
import { KBarProvider } from 'kbar'
import type { ReactElement } from 'react'
import { MemoryRouter, Route, Routes } from 'react-router'
import { vi } from 'vitest'
import type { Me } from '@/api/client'
import { MeContext } from '@/app/tenant'

export const ME: Me = {
  subject: 'ada',
  display_name: 'Ada',
  tenant_id: 'default',
  roles: ['admin'],
  can_write: true,
  can_approve: true,
}

export function renderView(
  element: ReactElement,
  { url, route, me = ME }: { url: string; route: string; me?: Me },
) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } })
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[url]}>
        <KBarProvider>
          <MeContext.Provider value={me}>
            <Routes>
              <Route path={route} element={element} />
            </Routes>
          </MeContext.Provider>
        </KBarProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  )
}

/** An answer of the fake API: a JSON body and its status (200 unless told). */
export type Answer = { status?: number; body: unknown }
/** Route handlers by "METHOD /path" (the pathname, without the query string). */
export type ApiRoutes = Record<string, (request: Request, url: URL) => Answer | Promise<Answer>>

/** Stubs globalThis.fetch (openapi-fetch looks it up at call time); unknown routes answer 404 problems. */
export function stubApi(routes: ApiRoutes) {
  const requests: Request[] = []
  const fetch = vi.fn(async (input: Request) => {
    requests.push(input.clone())
    const url = new URL(input.url)
    const handler = routes[`${input.method} ${decodeURIComponent(url.pathname)}`]
    const answer = handler
      ? await handler(input, url)
      : { status: 404, body: { status: 404, code: 'not_found', detail: `no stub for ${input.method} ${url.pathname}` } }
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { 'Content-Type': answer.status && answer.status >= 400 ? 'application/problem+json' : 'application/json' },
    })
  })
  vi.stubGlobal('fetch', fetch)
  return { fetch, requests }
}
