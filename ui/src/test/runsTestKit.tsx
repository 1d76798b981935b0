// Shared by the runs views' tests: a stand-in EventSource the test drives line by line, and their caller. Rendering
// and the fetch stub are the ones every view test uses (test/views.tsx).
import type { Me } from '@/api/client'

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

/** The caller of the runs suites: an admin who may approve, in tenant t1. */
export const ME: Me = {
  subject: 'alice',
  display_name: 'Alice',
  tenant_id: 't1',
  roles: ['admin', 'approver'],
  can_write: true,
  can_approve: true,
}
