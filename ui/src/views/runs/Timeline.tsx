// The Gantt-like node timeline of a run: one row per node, its bar placed between the run's first start and last
// end (or now, while running), coloured by status. Geometry comes from ./timeline (pure, tested).
import { memo, useMemo } from 'react'
import type { RunNode, RunView } from '@/api/client'
import { FINAL_STATUSES } from '@/api/hooks'
import { Empty } from '@/components/common'
import { statusClass } from '@/graph/nodes'
import { nodeLabel, seconds } from '@/lib/format'
import { timelineGeometry, type TimelineBar } from './timeline'
import { useNow } from './useNow'

function clockTime(value: string | null | undefined): string {
  return value ? new Date(value).toLocaleTimeString(undefined, { hour12: false }) : '—'
}

/** The hover text of a bar: everything dbt said about the node, one fact per line. */
export function barTitle(bar: TimelineBar): string {
  const { node } = bar
  const facts = [
    node.unique_id,
    `status: ${bar.status}`,
    `started ${clockTime(node.started_at)}${node.finished_at ? `, finished ${clockTime(node.finished_at)}` : ''}`,
    bar.seconds !== null ? `took ${seconds(bar.seconds)}${bar.running ? ' so far' : ''}` : null,
    node.rows_affected !== null && node.rows_affected !== undefined ? `rows: ${node.rows_affected}` : null,
    node.failures ? `failures: ${node.failures}` : null,
    node.message ? node.message : null,
  ]
  return facts.filter((f): f is string => f !== null).join('\n')
}

const TimelineRow = memo(function TimelineRow({ bar }: { bar: TimelineBar }) {
  const title = barTitle(bar)
  return (
    <div className="timeline-row" title={title} data-status={bar.status}>
      <span className="run-timeline-label" title={bar.uniqueId}>
        {nodeLabel(bar.uniqueId)}
      </span>
      <div className="bar-area">
        {bar.leftPct !== null && (
          <div
            className={`bar ${statusClass(bar.status)}${bar.running ? ' run-bar-growing' : ''}`}
            style={{ left: `${bar.leftPct}%`, width: `${bar.widthPct}%` }}
            aria-label={`${bar.uniqueId}: ${bar.status}`}
          />
        )}
      </div>
      <span className="run-timeline-time">{bar.seconds !== null ? seconds(bar.seconds) : bar.status}</span>
    </div>
  )
})

export function Timeline({ run, nodes }: { run: RunView; nodes: readonly RunNode[] }) {
  const live = !FINAL_STATUSES.has(run.status)
  const now = useNow(live && nodes.some((n) => n.started_at && !n.finished_at))
  const runEndedAt = run.finished_at ? new Date(run.finished_at).getTime() : null
  const geometry = useMemo(() => timelineGeometry(nodes, { now, runEndedAt }), [nodes, now, runEndedAt])

  if (nodes.length === 0)
    return (
      <div data-testid="timeline">
        <Empty>{live ? 'No node has started yet.' : run.started_at ? 'This run executed no nodes.' : 'This run never started.'}</Empty>
      </div>
    )
  return (
    <div className="timeline" data-testid="timeline">
      <div className="timeline-row run-timeline-axis" aria-hidden="true">
        <span className="muted">
          {nodes.length} node{nodes.length === 1 ? '' : 's'} · {seconds(geometry.spanSeconds)}
        </span>
        <div className="run-axis">
          {geometry.ticks.map((tick) => (
            <span key={tick.pct} className="run-tick" style={{ left: `${tick.pct}%` }}>
              {seconds(tick.seconds)}
            </span>
          ))}
        </div>
        <span />
      </div>
      {geometry.bars.map((bar, i) => (
        <TimelineRow key={`${bar.uniqueId}-${i}`} bar={bar} />
      ))}
    </div>
  )
}
