// How one run reads in a table cell: its node counts, its estimate and how long it took (or has taken so far).
import type { RunView } from '@/api/client'
import { statusClass } from '@/graph/nodes'
import { money, seconds } from '@/lib/format'

/** Seconds between start and finish; while running, until `now`; null before it started. */
export function runSeconds(run: Pick<RunView, 'started_at' | 'finished_at'>, now: number = Date.now()): number | null {
  if (!run.started_at) return null
  const end = run.finished_at ? new Date(run.finished_at).getTime() : now
  return Math.max(0, (end - new Date(run.started_at).getTime()) / 1000)
}

export function RunDuration({ run }: { run: RunView }) {
  const value = runSeconds(run)
  if (value === null) return <span className="muted">—</span>
  return run.finished_at ? <>{seconds(value)}</> : <span title="still running">{seconds(value)}…</span>
}

const COUNT_ORDER = ['ok', 'warn', 'bad', 'skip', 'running', 'none']

/** dbt's statuses folded into the UI's colours (success and pass are both "ok"), largest meaning first. */
export function nodeCountGroups(counts: Record<string, number> | null | undefined): { cls: string; count: number }[] {
  const byClass = new Map<string, number>()
  for (const [status, count] of Object.entries(counts ?? {})) {
    const cls = statusClass(status)
    byClass.set(cls, (byClass.get(cls) ?? 0) + count)
  }
  return COUNT_ORDER.filter((cls) => byClass.has(cls)).map((cls) => ({ cls, count: byClass.get(cls) ?? 0 }))
}

export function NodeCounts({ counts }: { counts: RunView['node_counts'] }) {
  const groups = nodeCountGroups(counts)
  if (groups.length === 0) return <span className="muted">—</span>
  const detail = Object.entries(counts ?? {})
    .map(([status, count]) => `${count} ${status}`)
    .join(', ')
  return (
    <span className="run-node-counts" title={detail}>
      {groups.map((g) => (
        <span key={g.cls} className="run-node-count">
          <i className={`dot ${g.cls}`} aria-hidden="true" />
          {g.count}
        </span>
      ))}
      <span className="run-sr-only">{detail}</span>
    </span>
  )
}

export function RunEstimate({ totals }: { totals: RunView['totals'] }) {
  if (!totals) return <span className="muted">—</span>
  const time = `~${seconds(totals.estimated_seconds ?? 0)}`
  if (totals.estimated_cost === null || totals.estimated_cost === undefined)
    return <span title={`${totals.unpriced ?? 0} node(s) unpriced`}>{time}</span>
  return (
    <span>
      {money(totals.estimated_cost, totals.currency)} <span className="muted">· {time}</span>
    </span>
  )
}
