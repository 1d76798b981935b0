import { describe, expect, it } from 'vitest'
import type { RunNode } from '@/api/client'
import { timelineGeometry, timelineTicks } from './timeline'

const T0 = Date.parse('2026-01-01T00:00:00Z')
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString()

function node(id: string, start: number | null, finish: number | null, status = 'success'): RunNode {
  return { attempt: 1, unique_id: `model.shop.${id}`, status, started_at: start === null ? null : at(start), finished_at: finish === null ? null : at(finish) }
}

describe('timelineGeometry', () => {
  it('places bars proportionally between the earliest start and the latest finish', () => {
    const geometry = timelineGeometry([node('a', 0, 2), node('b', 2, 10), node('c', 5, 6)], { now: T0 + 999_000 })
    expect(geometry.start).toBe(T0)
    expect(geometry.spanSeconds).toBe(10)
    const [a, b, c] = geometry.bars
    expect(a).toMatchObject({ leftPct: 0, widthPct: 20, seconds: 2, running: false })
    expect(b).toMatchObject({ leftPct: 20, widthPct: 80, seconds: 8 })
    expect(c).toMatchObject({ leftPct: 50, widthPct: 10, seconds: 1 })
  })

  it('measures from the first start even when it is not the first node listed', () => {
    const [late] = timelineGeometry([node('late', 30, 40), node('early', 20, 25)], { now: T0 }).bars
    expect(late).toMatchObject({ leftPct: 50, widthPct: 50 })
  })

  it('grows a running node up to now, and the span with it', () => {
    const nodes = [node('done', 0, 4), node('running', 2, null, 'running')]
    const before = timelineGeometry(nodes, { now: T0 + 8_000 })
    expect(before.spanSeconds).toBe(8)
    expect(before.bars[1]).toMatchObject({ leftPct: 25, widthPct: 75, running: true, status: 'running' })
    expect(before.bars[0]?.widthPct).toBe(50)

    const later = timelineGeometry(nodes, { now: T0 + 12_000 })
    expect(later.spanSeconds).toBe(12)
    expect(later.bars[1]?.seconds).toBe(10)
    expect(later.bars[0]?.widthPct).toBeCloseTo(33.333, 2) // finished bars shrink as the run goes on
  })

  it('ends an unfinished node of an ended run where the run ended, not now', () => {
    const geometry = timelineGeometry([node('a', 0, 2), node('cut', 1, null, 'running')], { now: T0 + 3_600_000, runEndedAt: T0 + 5_000 })
    expect(geometry.spanSeconds).toBe(5)
    expect(geometry.bars[1]).toMatchObject({ widthPct: 80, running: false })
  })

  it('keeps a row without a bar for a node that never started', () => {
    const geometry = timelineGeometry([node('a', 0, 1), node('skipped', null, null, 'skipped')], { now: T0 })
    expect(geometry.bars[1]).toMatchObject({ leftPct: null, widthPct: 0, seconds: null, status: 'skipped' })
  })

  it('has no span when nothing started yet', () => {
    const geometry = timelineGeometry([node('waiting', null, null, 'queued')], { now: T0 })
    expect(geometry.start).toBeNull()
    expect(geometry.ticks).toEqual([])
  })

  it('survives a run of instant nodes (no division by zero)', () => {
    const [bar] = timelineGeometry([node('instant', 3, 3)], { now: T0 }).bars
    expect(bar).toMatchObject({ leftPct: 0, widthPct: 0 })
  })
})

describe('timelineTicks', () => {
  it('ticks at a round step across the span', () => {
    expect(timelineTicks(10).map((t) => t.seconds)).toEqual([0, 2, 4, 6, 8, 10])
    expect(timelineTicks(10).map((t) => t.pct)).toEqual([0, 20, 40, 60, 80, 100])
    expect(timelineTicks(3.4).map((t) => t.seconds)).toEqual([0, 1, 2, 3])
    expect(timelineTicks(600).map((t) => t.seconds)).toEqual([0, 120, 240, 360, 480, 600])
  })
})
