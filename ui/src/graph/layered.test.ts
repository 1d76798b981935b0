import { describe, expect, it } from 'vitest'
import type { Box, Link } from './engines'
import { engineFor } from './layout'
import { layoutFastLayered } from './layered'

function chainOfLayers(layers: number, perLayer: number): { boxes: Box[]; links: Link[] } {
  const boxes: Box[] = []
  const links: Link[] = []
  for (let l = 0; l < layers; l++)
    for (let i = 0; i < perLayer; i++) {
      boxes.push({ id: `n${l}_${i}`, width: 200, height: 40 })
      if (l > 0) links.push({ source: `n${l - 1}_${(i * 7) % perLayer}`, target: `n${l}_${i}` })
      if (l > 1 && i % 5 === 0) links.push({ source: `n${l - 2}_${i}`, target: `n${l}_${i}` }) // a longer edge
    }
  return { boxes, links }
}

describe('the plain layered layout', () => {
  it('puts every parent left of its children, and never two boxes on one another', () => {
    const { boxes, links } = chainOfLayers(6, 20)
    const at = new Map(layoutFastLayered(boxes, links).map(([id, x, y]) => [id, { x, y }]))
    expect(at.size).toBe(boxes.length)
    for (const { source, target } of links) expect(at.get(source)!.x).toBeLessThan(at.get(target)!.x)
    const cells = new Set([...at.values()].map((p) => `${p.x},${p.y}`))
    expect(cells.size).toBe(boxes.length)
  })

  it('survives a cycle (collapsed groups can make one) and lays it out anyway', () => {
    const boxes = ['a', 'b', 'c'].map((id) => ({ id, width: 200, height: 40 }))
    const links = [
      { source: 'a', target: 'b' },
      { source: 'b', target: 'c' },
      { source: 'c', target: 'b' },
    ]
    expect(layoutFastLayered(boxes, links).map(([id]) => id).sort()).toEqual(['a', 'b', 'c'])
  })

  it('lays out 20,000 nodes in well under a second, with no deep recursion', () => {
    const { boxes, links } = chainOfLayers(10, 2000)
    const started = performance.now()
    expect(layoutFastLayered(boxes, links)).toHaveLength(20_000)
    expect(performance.now() - started).toBeLessThan(3000) // about 0.2 s here; generous for a loaded machine
  })

  it('is chosen above the size ELK can take', () => {
    expect([engineFor(100), engineFor(5000), engineFor(12_000)]).toEqual(['dagre', 'elk', 'layered'])
  })
})
