// Shared by the runs views' tests: a stand-in EventSource the test drives line by line, a fetch stub that answers
// by route and records requests, and a render with everything the views expect around them.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { render } from '@testing-library/react'
import { KBarProvider } from 'kbar'
import type { ReactElement } from 'react'
import { MemoryRouter, Route, Routes, useLocation } from 'react-router'
import { vi } from 'vitest'
import type { Me } from '@/api/client'
import { MeContext } from '@/app/tenant'

type Listener = (event: MessageEvent<string>) => void

export class FakeEventSource {
  static instances: FakeEventSource[] = []
  static latest(): FakeEventSource {
    const last = FakeEventSource.instances.at(-1)
    if (!last) throw new Error('no EventSource was opened')
    return last
  }

  readonly url: string
  readyState = 0
  onopen: ((event: Event) => void) | null = null
  onmessage: Listener | null = null
  onerror: ((event: Event) => void) | null = null
  private listeners = new Map<string, Listener[]>()

  constructor(url: string | URL) {
    this.url = String(url)
    FakeEventSource.instances.push(this)
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }

  removeEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, (this.listeners.get(type) ?? []).filter((l) => l !== listener))
  }

  close(): void {
    this.readyState = 2
  }

  get closed(): boolean {
    return this.readyState === 2
  }

  /** The query string's `from`, as the server would read it. */
  get from(): number {
    return Number(new URL(this.url, 'http://x').searchParams.get('from'))
  }

  open(): void {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }

  line(line: number, text: string): void {
    const event = new MessageEvent<string>('message', { data: text, lastEventId: String(line) })
    this.onmessage?.(event)
    for (const listener of this.listeners.get('message') ?? []) listener(event)
  }

  lines(from: number, to: number, text: (n: number) => string = (n) => `line ${n}`): void {
    for (let n = from; n <= to; n++) this.line(n, text(n))
  }

  end(lastLine: number): void {
    const event = new MessageEvent<string>('end', { data: String(lastLine), lastEventId: String(lastLine) })
    for (const listener of this.listeners.get('end') ?? []) listener(event)
  }

  /** A dropped connection: `closed` when the browser gave up (an HTTP error), else it is retrying by itself. */
  fail({ closed }: { closed: boolean }): void {
    this.readyState = closed ? 2 : 0
    this.onerror?.(new Event('error'))
  }
}

export type FetchRoute = (request: Request, url: URL) => Response | Promise<Response> | undefined

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
}

/** Stubs fetch with the first route that answers; unanswered requests are a 404 problem. Returns the log. */
export function stubFetch(...routes: FetchRoute[]): { requests: Request[]; bodies: unknown[] } {
  const log = { requests: [] as Request[], bodies: [] as unknown[] }
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const request = input
      log.requests.push(request)
      log.bodies.push(request.method === 'GET' ? undefined : await request.clone().json().catch(() => undefined))
      const url = new URL(request.url)
      for (const route of routes) {
        const answer = await route(request, url)
        if (answer) return answer
      }
      return json({ status: 404, detail: `no stub for ${request.method} ${url.pathname}` }, 404)
    }),
  )
  return log
}

export const ME: Me = {
  subject: 'alice',
  display_name: 'Alice',
  tenant_id: 't1',
  roles: ['admin', 'approver'],
  can_write: true,
  can_approve: true,
}

/** Shows the router's current search string, so tests can read what the view wrote into the URL. */
function LocationProbe() {
  const location = useLocation()
  return <output data-testid="location">{location.pathname + location.search}</output>
}

export function renderRoute(element: ReactElement, { path, url, me = ME }: { path: string; url: string; me?: Me }) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, refetchInterval: false, staleTime: Infinity } } })
  return render(
    <QueryClientProvider client={client}>
      <KBarProvider>
        <MeContext.Provider value={me}>
          <MemoryRouter initialEntries={[url]}>
            <Routes>
              <Route path={path} element={element} />
            </Routes>
            <LocationProbe />
          </MemoryRouter>
        </MeContext.Provider>
      </KBarProvider>
    </QueryClientProvider>,
  )
}
