// A plain layered layout for drawings ELK cannot take: ELK overflows the call stack of a browser worker on about
// 10,000 nodes (elkjs's own recursion), and takes tens of seconds before that. This one is iterative and linear in
// nodes and edges times a few sweeps: longest-path layers from the roots (Kahn's order, so cycles of collapsed
// groups cannot hang it), then barycentre sweeps to untangle each layer, then columns left to right.
import { maxOf, type Box, type Link, type Positions } from './engines'

const LAYER_GAP = 80
const NODE_GAP = 12
const SWEEPS = 4
const ASPECT = 1.6

export function layoutFastLayered(boxes: Box[], links: Link[]): Positions {
  const index = new Map(boxes.map((b, i) => [b.id, i]))
  const parents: number[][] = boxes.map(() => [])
  const children: number[][] = boxes.map(() => [])
  for (const { source, target } of links) {
    const s = index.get(source)
    const t = index.get(target)
    if (s === undefined || t === undefined || s === t) continue
    parents[t]!.push(s)
    children[s]!.push(t)
  }
  // layers: longest path from a root, in topological (Kahn) order; what a cycle leaves out goes last
  const layer = new Array<number>(boxes.length).fill(0)
  const waiting = parents.map((p) => p.length)
  const queue = waiting.flatMap((n, i) => (n === 0 ? [i] : []))
  const seen = new Array<boolean>(boxes.length).fill(false)
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head]!
    seen[node] = true
    for (const child of children[node]!) {
      layer[child] = Math.max(layer[child]!, layer[node]! + 1)
      if (--waiting[child]! === 0) queue.push(child)
    }
  }
  const deepest = maxOf(layer)
  layer.forEach((_, i) => {
    if (!seen[i]) layer[i] = deepest + 1
  })
  const sparse: number[][] = []
  boxes.forEach((_, i) => (sparse[layer[i]!] ??= []).push(i))
  const layers = sparse.filter((nodes) => nodes !== undefined) // a cycle's nodes can leave a layer empty
  // order within layers: barycentre of the neighbours in the layer before (down) or after (up)
  const rank = new Array<number>(boxes.length).fill(0)
  const renumber = (nodes: number[]) => nodes.forEach((n, r) => (rank[n] = r))
  layers.forEach(renumber)
  const sweep = (order: number[][], neighbours: number[][]) => {
    for (const nodes of order) {
      const centre = new Map<number, number>()
      for (const n of nodes) {
        const around = neighbours[n]!
        centre.set(n, around.length ? around.reduce((sum, m) => sum + rank[m]!, 0) / around.length : rank[n]!)
      }
      nodes.sort((a, b) => centre.get(a)! - centre.get(b)! || a - b)
      renumber(nodes)
    }
  }
  for (let i = 0; i < SWEEPS; i++) {
    sweep(layers.slice(1), parents)
    sweep(layers.slice(0, -1).reverse(), children)
  }
  // Layers left to right; a layer with more nodes than fit one column is folded into several side by side, so
  // that a 10,000-node project is not one strip sixty thousand pixels tall (the drawing aims at about 16:10).
  const width = maxOf(boxes.map((b) => b.width))
  const height = maxOf(boxes.map((b) => b.height)) + NODE_GAP
  const perColumn = Math.max(20, Math.ceil(Math.sqrt(((width + LAYER_GAP) * boxes.length) / (height * ASPECT))))
  const columns = layers.map((nodes) => Math.ceil(nodes.length / perColumn))
  const tallest = maxOf(layers.map((nodes) => Math.min(nodes.length, perColumn))) * height
  const positions: Positions = []
  let x = 0
  layers.forEach((nodes, l) => {
    const rows = Math.ceil(nodes.length / columns[l]!)
    const top = (tallest - rows * height) / 2
    nodes.forEach((n, i) => {
      const column = Math.floor(i / rows)
      positions.push([boxes[n]!.id, x + column * (width + NODE_GAP * 2), top + (i % rows) * height])
    })
    x += columns[l]! * (width + NODE_GAP * 2) - NODE_GAP * 2 + LAYER_GAP
  })
  return positions
}
