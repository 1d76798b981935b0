// Where a drawing's positions come from, fastest first: this tab's memory, the server's layout cache (kept per
// graph version and key, so the next visitor draws a large graph at once), or the layout worker. A layout in
// progress reports its phase on the bus and can be canceled; a computed layout is sent to the server cache.
import { api } from '@/api/client'
import { bus } from '@/lib/bus'
import { LAYOUT_REVISION, type Box, type Engine, type Link, type Positions } from './engines'
import type { LayoutAnswer, LayoutJob } from './layout.worker'

export type LayoutResult = { positions: Map<string, [number, number]>; engine: Engine; ms: number; source: 'memory' | 'server' | 'computed' }
export type LayoutRequest = { tenant: string; project: string; graphVersion: number; boxes: Box[]; links: Link[] }

/** Up to this many boxes dagre is quicker than ELK and its drawing as good; above, ELK scales far better. */
export const DAGRE_UP_TO = 150
/** Above this many boxes ELK is not tried: it would take tens of seconds, and around 10,000 it overflows the
 * worker's call stack; the plain layered layout (layered.ts) draws them in well under a second. */
export const ELK_UP_TO = 8000

export function engineFor(boxes: number): Engine {
  return boxes <= DAGRE_UP_TO ? 'dagre' : boxes <= ELK_UP_TO ? 'elk' : 'layered'
}

export class LayoutCanceled extends Error {
  constructor() {
    super('layout canceled')
    this.name = 'LayoutCanceled'
  }
}

const memory = new Map<string, LayoutResult>()
const MEMORY_ENTRIES = 12

/** A digest of everything the positions depend on: what is drawn, how it is linked, and the engine's revision. */
export async function layoutKey(graphVersion: number, boxes: Box[], links: Link[]): Promise<string> {
  const text = JSON.stringify([LAYOUT_REVISION, graphVersion, boxes.map((b) => [b.id, b.width, b.height]), links.map((l) => [l.source, l.target])])
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, 40)
}

function remember(key: string, result: LayoutResult): void {
  memory.delete(key)
  memory.set(key, result)
  while (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value as string)
}

let worker: Worker | null = null
let jobs = 0
let running: { id: number; reject: (e: Error) => void } | null = null

function theWorker(): Worker {
  worker ??= new Worker(new URL('./layout.worker.ts', import.meta.url), { type: 'module', name: 'layout' })
  return worker
}

/** Stop the layout in progress (if any): its promise rejects with LayoutCanceled. */
export function cancelLayout(): void {
  if (!running) return
  worker?.terminate()
  worker = null
  running.reject(new LayoutCanceled())
  running = null
}

function compute(engine: Engine, boxes: Box[], links: Link[]): Promise<LayoutAnswer> {
  cancelLayout() // one layout at a time: a newer request replaces an older one
  const id = ++jobs
  return new Promise((resolve, reject) => {
    const w = theWorker()
    running = { id, reject }
    w.onmessage = (event: MessageEvent<LayoutAnswer>) => {
      if (event.data.id !== id) return
      running = null
      if (event.data.error) reject(new Error(event.data.error))
      else resolve(event.data)
    }
    w.onerror = (event) => {
      running = null
      worker?.terminate()
      worker = null
      reject(new Error(`layout worker failed: ${event.message}`))
    }
    const job: LayoutJob = { id, engine, boxes, links }
    w.postMessage(job)
  })
}

async function fromServer(request: LayoutRequest, key: string): Promise<LayoutResult | null> {
  const { data, response } = await api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph/layouts/{key}', {
    params: { path: { tenant_id: request.tenant, project_id: request.project, key }, query: { version: request.graphVersion } },
  })
  if (!response.ok || !data) return null
  const positions = data.positions as Record<string, [number, number]> // see unwrapAs: tuples come back widened
  return { positions: new Map(Object.entries(positions)), engine: data.engine, ms: data.elapsed_ms, source: 'server' }
}

function toServer(request: LayoutRequest, key: string, answer: LayoutAnswer, positions: Positions): void {
  void api
    .PUT('/api/tenants/{tenant_id}/projects/{project_id}/graph/layouts/{key}', {
      params: { path: { tenant_id: request.tenant, project_id: request.project, key }, query: { version: request.graphVersion } },
      body: { engine: answer.engine, positions: Object.fromEntries(positions.map(([id, x, y]) => [id, [x, y]])), elapsed_ms: answer.ms },
    })
    .catch(() => undefined) // the cache is an optimisation: failing to fill it costs the next visitor time, nothing else
}

export async function layout(request: LayoutRequest): Promise<LayoutResult> {
  const nodes = request.boxes.length
  const started = performance.now()
  const key = await layoutKey(request.graphVersion, request.boxes, request.links)
  performance.mark('lg:layout-keyed')
  const known = memory.get(key)
  if (known) {
    bus.emit('layout:progress', { phase: 'done', nodes, ms: performance.now() - started })
    return { ...known, source: 'memory' }
  }
  bus.emit('layout:progress', { phase: 'cache', nodes, ms: 0 })
  const cached = await fromServer(request, key).catch(() => null)
  performance.mark('lg:layout-fetched')
  if (cached && cached.positions.size === nodes) {
    remember(key, cached)
    bus.emit('layout:progress', { phase: 'done', nodes, ms: performance.now() - started })
    return cached
  }
  bus.emit('layout:progress', { phase: 'layout', nodes, ms: performance.now() - started })
  let answer: LayoutAnswer
  const engine = engineFor(nodes)
  try {
    answer = await compute(engine, request.boxes, request.links)
  } catch (error) {
    if (error instanceof LayoutCanceled) {
      bus.emit('layout:progress', { phase: 'canceled', nodes, ms: performance.now() - started })
      throw error
    }
    if (engine === 'layered') {
      bus.emit('layout:progress', { phase: 'failed', nodes, ms: performance.now() - started })
      throw error
    }
    answer = await compute('layered', request.boxes, request.links) // ELK or dagre failed on this graph
  }
  const positions = answer.positions ?? []
  const result: LayoutResult = { positions: new Map(positions.map(([id, x, y]) => [id, [x, y]])), engine: answer.engine, ms: answer.ms, source: 'computed' }
  remember(key, result)
  toServer(request, key, answer, positions)
  bus.emit('layout:progress', { phase: 'done', nodes, ms: performance.now() - started })
  return result
}
