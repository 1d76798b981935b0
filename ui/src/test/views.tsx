// Rendering a view in a test as the shell would: a query client, a router at a URL, the caller (MeContext) and
// the command palette's context. And a fake API: `stubApi` answers fetch by route, and records every request.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { render } from '@testing-library/react'
import { KBarProvider } from 'kbar'
import type { ReactElement } from 'react'
import { MemoryRouter, Route, Routes, useLocation } from 'react-router'
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

/** Shows the router's current path and search, so tests can read what a view wrote into the URL. */
function LocationProbe() {
  const location = useLocation()
  return <output data-testid="location">{location.pathname + location.search}</output>
}

export function renderView(
  element: ReactElement,
  { url, route, me = ME }: { url: string; route: string; me?: Me },
) {
  const client = new QueryClient({
    defaultOptions: { queries: { retry: false, refetchInterval: false }, mutations: { retry: false } },
  })
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[url]}>
        <KBarProvider>
          <MeContext.Provider value={me}>
            <Routes>
              <Route path={route} element={element} />
            </Routes>
            <LocationProbe />
          </MeContext.Provider>
        </KBarProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  )
}

export function json(body: unknown, status = 200): Response {
  const type = status >= 400 ? 'application/problem+json' : 'application/json'
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } })
}

/** Answers a request, or passes (undefined) to the next route. */
export type FetchRoute = (request: Request, url: URL) => Response | undefined | Promise<Response | undefined>

/** Stubs globalThis.fetch (openapi-fetch looks it up at call time) with the first route that answers; others get a
 * 404 problem. Returns the requests made and their JSON bodies. */
export function stubFetch(...routes: FetchRoute[]) {
  const log = { requests: [] as Request[], bodies: [] as unknown[] }
  const fetch = vi.fn(async (input: Request) => {
    log.requests.push(input.clone())
    log.bodies.push(input.method === 'GET' ? undefined : await input.clone().json().catch(() => undefined))
    const url = new URL(input.url)
    for (const route of routes) {
      const answer = await route(input, url)
      if (answer) return answer
    }
    return json({ status: 404, code: 'not_found', detail: `no stub for ${input.method} ${url.pathname}` }, 404)
  })
  vi.stubGlobal('fetch', fetch)
  return { fetch, ...log }
}

/** An answer of the fake API: a JSON body and its status (200 unless told). */
export type Answer = { status?: number; body: unknown }
/** Route handlers by "METHOD /path" (the pathname, without the query string). */
export type ApiRoutes = Record<string, (request: Request, url: URL) => Answer | Promise<Answer>>

/** ``stubFetch`` with routes named "METHOD /path". */
export function stubApi(routes: ApiRoutes) {
  return stubFetch(async (request, url) => {
    const handler = routes[`${request.method} ${decodeURIComponent(url.pathname)}`]
    if (!handler) return undefined
    const answer = await handler(request, url)
    return json(answer.body, answer.status ?? 200)
  })
}
