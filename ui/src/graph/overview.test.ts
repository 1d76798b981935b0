import { describe, expect, it, vi } from 'vitest'
import { bounds, boxAt, drawOverview, type Box } from './overview'

const box = (id: string, x: number, y: number): Box => ({ id, x, y, width: 200, height: 40, colour: '#000', dot: null })
const BOXES = [box('a', 0, 0), box('b', 300, 0), box('c', 300, 100), box('far', 100_000, 100_000)]

describe('overview', () => {
  it('finds the box under a point of the flow, or nothing between boxes', () => {
    expect(boxAt(BOXES, 10, 10)?.id).toBe('a')
    expect(boxAt(BOXES, 499, 139)?.id).toBe('c')
    expect(boxAt(BOXES, 250, 20)).toBeNull()
  })

  it('bounds every box', () => {
    expect(bounds(BOXES)).toEqual({ x: 0, y: 0, width: 100_200, height: 100_040 })
    expect(bounds([])).toEqual({ x: 0, y: 0, width: 1, height: 1 })
  })

  it('paints only what is on screen: boxes and lines outside the view are skipped', () => {
    const calls: string[] = []
    const context = {
      setTransform: vi.fn(),
      clearRect: vi.fn(),
      beginPath: vi.fn(),
      moveTo: vi.fn(() => calls.push('line')),
      lineTo: vi.fn(),
      stroke: vi.fn(),
      fillRect: vi.fn((x: number) => calls.push(`box@${x}`)),
      strokeRect: vi.fn(() => calls.push('selected')),
      set fillStyle(_: string) {},
      set strokeStyle(_: string) {},
      set lineWidth(_: number) {},
    } as unknown as CanvasRenderingContext2D
    const lines = [
      { from: 'a', to: 'b' },
      { from: 'b', to: 'far' },
      { from: 'far', to: 'far' },
    ]
    drawOverview(context, { width: 800, height: 600, ratio: 1 }, [0, 0, 1], BOXES, lines, 'b')
    expect(calls.filter((c) => c === 'line')).toHaveLength(2) // a->b, and b->far crosses the view
    expect(calls.some((c) => c === 'box@100000')).toBe(false)
    expect(calls.filter((c) => c === 'selected')).toHaveLength(1)
  })
})
