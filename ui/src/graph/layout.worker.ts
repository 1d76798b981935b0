// The layout worker: runs ELK or dagre off the main thread, so a layout of thousands of nodes never freezes the
// page. One job at a time; a job is canceled by terminating the worker (ELK cannot be interrupted otherwise).
// elk.bundled.js installs its own onmessage when loaded in a worker; ours, assigned after the import, replaces it.
import ELK from 'elkjs/lib/elk.bundled.js'
import { layoutDagre, layoutLayered, type Box, type Engine, type Link, type Positions } from './engines'
import { layoutFastLayered } from './layered'

export type LayoutJob = { id: number; engine: Engine; boxes: Box[]; links: Link[] }
export type LayoutAnswer = { id: number; positions?: Positions; engine: Engine; error?: string; ms: number }

const elk = new ELK()

self.onmessage = async (event: MessageEvent<LayoutJob>) => {
  const { id, engine, boxes, links } = event.data
  const started = performance.now()
  try {
    const positions =
      engine === 'elk' ? await layoutLayered(elk, boxes, links) : engine === 'dagre' ? layoutDagre(boxes, links) : layoutFastLayered(boxes, links)
    const answer: LayoutAnswer = { id, positions, engine, ms: performance.now() - started }
    self.postMessage(answer)
  } catch (error) {
    const answer: LayoutAnswer = { id, engine, error: String(error), ms: performance.now() - started }
    self.postMessage(answer)
  }
}
