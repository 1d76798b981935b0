// The two layout engines behind one signature: ELK's layered algorithm (the default) and dagre (the fallback
// for small graphs). Pure functions over plain data, run inside the layout worker and in unit tests.
import dagre from '@dagrejs/dagre'
import type { ElkNode, LayoutOptions } from 'elkjs/lib/elk-api'

export type Engine = 'elk' | 'dagre' | 'layered'
export type Box = { id: string; width: number; height: number }
export type Link = { source: string; target: string }
export type Positions = [id: string, x: number, y: number][]

export type ElkLike = { layout: (graph: ElkNode) => Promise<ElkNode> }

/** Left to right in layers, tuned for speed on dbt-sized graphs (ADR 0014 has the measurements): layers by longest
 * path from the sources, one cheap crossing-minimisation sweep, simple node placement, polyline routing (the canvas
 * draws its own edges; only node positions are used). On 5,000 generated nodes this took 9 s where ELK's defaults
 * took 63 s, with as many edge crossings and a drawing half as tall. */
export const ELK_OPTIONS: LayoutOptions = {
  'elk.algorithm': 'layered',
  'elk.direction': 'RIGHT',
  'elk.layered.layering.strategy': 'LONGEST_PATH_SOURCE',
  'elk.layered.crossingMinimization.strategy': 'LAYER_SWEEP',
  'elk.layered.thoroughness': '1',
  'elk.layered.crossingMinimization.greedySwitch.type': 'OFF',
  'elk.layered.nodePlacement.strategy': 'SIMPLE',
  'elk.edgeRouting': 'POLYLINE',
  // spacing only sizes the drawing (polyline routing otherwise widens a layer gap with its tallest edge)
  'elk.layered.spacing.edgeEdgeBetweenLayers': '0',
  'elk.layered.spacing.nodeNodeBetweenLayers': '80',
  'elk.spacing.nodeNode': '12',
  'elk.spacing.edgeEdge': '2',
  'elk.spacing.edgeNode': '6',
  'elk.spacing.componentComponent': '40',
}

/** Bumped whenever the options or the engines change, so that layouts cached under the old ones are not reused. */
export const LAYOUT_REVISION = 4

const GRID_GAP = 16

/** The largest of ``values`` (0 for none), without spreading them into arguments: ``Math.max(...values)`` overflows
 * the (small) call stack of a worker on a few thousand values. */
export function maxOf(values: readonly number[]): number {
  let most = 0
  for (const value of values) if (value > most) most = value
  return most
}

/** Nodes without any link (unused sources, lone seeds: 7,300 of Spellbook's 12,400) are laid out in a grid under
 * the drawing of the rest: ELK would spend as long packing them as laying out the graph itself. */
export async function layoutLayered(elk: ElkLike, boxes: Box[], links: Link[]): Promise<Positions> {
  const linked = new Set(links.flatMap((l) => [l.source, l.target]))
  const connected = boxes.filter((b) => linked.has(b.id))
  const alone = boxes.filter((b) => !linked.has(b.id))
  const positions = connected.length > 0 ? await layoutElk(elk, connected, links) : []
  let bottom = 0
  let right = 0
  const size = new Map(connected.map((b) => [b.id, b]))
  for (const [id, x, y] of positions) {
    bottom = Math.max(bottom, y + (size.get(id)?.height ?? 0))
    right = Math.max(right, x + (size.get(id)?.width ?? 0))
  }
  if (alone.length === 0) return positions
  const cell = maxOf(alone.map((b) => b.width)) + GRID_GAP
  const row = maxOf(alone.map((b) => b.height)) + GRID_GAP
  const columns = Math.max(1, Math.floor(Math.max(right, Math.sqrt(alone.length) * cell) / cell))
  const top = positions.length > 0 ? bottom + row * 2 : 0
  alone.forEach((b, i) => positions.push([b.id, (i % columns) * cell, top + Math.floor(i / columns) * row]))
  return positions
}

export async function layoutElk(elk: ElkLike, boxes: Box[], links: Link[], options: LayoutOptions = ELK_OPTIONS): Promise<Positions> {
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: options,
    children: boxes.map((b) => ({ id: b.id, width: b.width, height: b.height })),
    edges: links.map((l, i) => ({ id: `e${i}`, sources: [l.source], targets: [l.target] })),
  }
  const out = await elk.layout(graph)
  return (out.children ?? []).map((c) => [c.id, c.x ?? 0, c.y ?? 0])
}

export function layoutDagre(boxes: Box[], links: Link[]): Positions {
  const g = new dagre.graphlib.Graph({ multigraph: false, compound: false })
  g.setGraph({ rankdir: 'LR', nodesep: 16, ranksep: 80, marginx: 0, marginy: 0 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const b of boxes) g.setNode(b.id, { width: b.width, height: b.height })
  for (const l of links) g.setEdge(l.source, l.target)
  dagre.layout(g)
  // dagre places centres; the canvas wants top-left corners
  return boxes.map((b) => {
    const n = g.node(b.id)
    return [b.id, n.x - b.width / 2, n.y - b.height / 2]
  })
}
