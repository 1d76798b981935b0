import ELK from 'elkjs/lib/elk.bundled.js'
import { describe, expect, it } from 'vitest'
import { layoutDagre, layoutElk, layoutLayered, type Box, type Link } from './engines'
import { layoutKey } from './layout'

// a dbt-like DAG: 3 sources -> 6 staging -> 4 marts -> 1 exposure, plus a long edge source -> mart
function dag(): { boxes: Box[]; links: Link[] } {
  const ids = ['s0', 's1', 's2', 'g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'm0', 'm1', 'm2', 'm3', 'x0']
  const links: Link[] = [
    ...[0, 1, 2, 3, 4, 5].map((i) => ({ source: `s${i % 3}`, target: `g${i}` })),
    ...[0, 1, 2, 3].map((i) => ({ source: `g${i}`, target: `m${i}` })),
    ...[0, 1, 2, 3].map((i) => ({ source: `g${i + 2}`, target: `m${i}` })),
    { source: 'm0', target: 'x0' },
    { source: 'm3', target: 'x0' },
    { source: 's0', target: 'm2' },
  ]
  return { boxes: ids.map((id) => ({ id, width: 200, height: 40 })), links }
}

function checkLeftToRight(positions: [string, number, number][], links: Link[]) {
  const at = new Map(positions.map(([id, x, y]) => [id, { x, y }]))
  expect(at.size).toBe(14)
  for (const { source, target } of links) expect(at.get(source)!.x + 200).toBeLessThanOrEqual(at.get(target)!.x)
  // no two boxes overlap
  const all = [...at.values()]
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i]!
      const b = all[j]!
      expect(Math.abs(a.x - b.x) >= 200 || Math.abs(a.y - b.y) >= 40).toBe(true)
    }
}

describe('layout engines', () => {
  it('ELK lays a dbt graph out left to right in layers, without overlaps', async () => {
    const { boxes, links } = dag()
    checkLeftToRight(await layoutElk(new ELK(), boxes, links), links)
  })

  it('dagre does the same for small graphs, and gives top-left corners like ELK', () => {
    const { boxes, links } = dag()
    const positions = layoutDagre(boxes, links)
    checkLeftToRight(positions, links)
    expect(Math.min(...positions.map(([, x]) => x))).toBeGreaterThanOrEqual(0)
  })

  it('puts nodes without links in a grid under the drawing of the rest, overlapping nothing', async () => {
    const { boxes, links } = dag()
    const lonely = Array.from({ length: 9 }, (_, i) => ({ id: `lone${i}`, width: 200, height: 40 }))
    const positions = await layoutLayered(new ELK(), [...boxes, ...lonely], links)
    const at = new Map(positions.map(([id, x, y]) => [id, { x, y }]))
    expect(at.size).toBe(23)
    const graphBottom = Math.max(...boxes.map((b) => at.get(b.id)!.y + 40))
    for (const box of lonely) expect(at.get(box.id)!.y).toBeGreaterThan(graphBottom)
    const cells = new Set(lonely.map((b) => `${at.get(b.id)!.x},${at.get(b.id)!.y}`))
    expect(cells.size).toBe(9)
  })

  it('keys a layout by what is drawn: same inputs, same key; any change, another key', async () => {
    const { boxes, links } = dag()
    const key = await layoutKey(3, boxes, links)
    expect(key).toMatch(/^[0-9a-f]{40}$/)
    expect(await layoutKey(3, [...boxes], [...links])).toBe(key)
    expect(await layoutKey(4, boxes, links)).not.toBe(key)
    expect(await layoutKey(3, boxes, links.slice(1))).not.toBe(key)
    expect(await layoutKey(3, boxes.map((b) => (b.id === 'x0' ? { ...b, width: 220 } : b)), links)).not.toBe(key)
  })
})
