// Where each node's bar sits on the run's timeline: a pure function of the nodes' times, so it is testable and
// the component only draws. Positions are percentages of the span from the earliest start to the latest end.
import type { RunNode } from '@/api/client'

export type TimelineBar = {
  uniqueId: string
  status: string
  /** null: the node has not started (no bar, the row still says what it is). */
  leftPct: number | null
  widthPct: number
  seconds: number | null
  running: boolean
  node: RunNode
}

export type TimelineTick = { pct: number; seconds: number }

export type TimelineGeometry = {
  /** Epoch ms of the earliest start; null when no node has started. */
  start: number | null
  spanSeconds: number
  bars: TimelineBar[]
  ticks: TimelineTick[]
}

export type TimelineClock = {
  /** Now, in epoch ms: where an unfinished node's bar ends while the run goes on. */
  now: number
  /** When the run ended (epoch ms), if it did: an unfinished node of an ended run stops there, not at now. */
  runEndedAt?: number | null
}

const NICE_STEPS_SECONDS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400]

function ms(value: string | null | undefined): number | null {
  if (!value) return null
  const at = new Date(value).getTime()
  return Number.isNaN(at) ? null : at
}

/** Ticks at a round interval that gives about `count` of them across the span (always including 0). */
export function timelineTicks(spanSeconds: number, count = 6): TimelineTick[] {
  if (spanSeconds <= 0) return [{ pct: 0, seconds: 0 }]
  const step = NICE_STEPS_SECONDS.find((s) => spanSeconds / s <= count) ?? Math.ceil(spanSeconds / count / 86400) * 86400
  const ticks: TimelineTick[] = []
  for (let at = 0; at <= spanSeconds + 1e-9; at += step) ticks.push({ pct: (at / spanSeconds) * 100, seconds: Number(at.toFixed(3)) })
  return ticks
}

export function timelineGeometry(nodes: readonly RunNode[], clock: TimelineClock): TimelineGeometry {
  const openEnd = clock.runEndedAt ?? clock.now
  const spans = nodes.map((node) => {
    const start = ms(node.started_at)
    const finish = ms(node.finished_at)
    // a node that has not finished lasts until now (it is running) or until the run ended (it was cut short)
    const end = start === null ? null : Math.max(start, finish ?? openEnd)
    return { node, start, end, running: start !== null && finish === null && !clock.runEndedAt }
  })
  const starts = spans.flatMap((s) => (s.start === null ? [] : [s.start]))
  const ends = spans.flatMap((s) => (s.end === null ? [] : [s.end]))
  if (starts.length === 0)
    return {
      start: null,
      spanSeconds: 0,
      ticks: [],
      bars: spans.map((s) => ({ uniqueId: s.node.unique_id, status: s.node.status, leftPct: null, widthPct: 0, seconds: null, running: false, node: s.node })),
    }
  // reduce rather than Math.min(...xs): spreading tens of thousands of arguments can overflow the stack
  const first = starts.reduce((a, b) => Math.min(a, b))
  const last = ends.reduce((a, b) => Math.max(a, b))
  const span = Math.max(last - first, 1) // a run of instant nodes still needs a non-zero span to divide by
  return {
    start: first,
    spanSeconds: (last - first) / 1000,
    ticks: timelineTicks((last - first) / 1000),
    bars: spans.map(({ node, start, end, running }) => ({
      uniqueId: node.unique_id,
      status: running ? 'running' : node.status,
      leftPct: start === null ? null : ((start - first) / span) * 100,
      widthPct: start === null || end === null ? 0 : ((end - start) / span) * 100,
      seconds: start === null || end === null ? null : (end - start) / 1000,
      running,
      node,
    })),
  }
}
