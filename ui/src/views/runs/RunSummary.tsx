// The head of a run's page: what was asked, by whom, who decided, when it ran, how it ended and why, and whether
// dbt did what the plan said (plan fidelity).
import type { ReactNode } from 'react'
import { Link } from 'react-router'
import type { RunView } from '@/api/client'
import { paths } from '@/app/routes'
import { nodeLabel, seconds, when } from '@/lib/format'
import { NodeCounts, runSeconds } from './runCells'
import { useNow } from './useNow'

/** A moment as the clock said it (the reader's zone), and how long ago. */
function At({ value }: { value: string | null | undefined }) {
  if (!value) return <span className="muted">—</span>
  const at = new Date(value)
  const sameDay = at.toDateString() === new Date().toDateString()
  const clock = sameDay ? at.toLocaleTimeString(undefined, { hour12: false }) : at.toLocaleString(undefined, { hour12: false })
  const ageSeconds = (Date.now() - at.getTime()) / 1000
  return (
    <time dateTime={value} title={value}>
      {clock}
      {ageSeconds >= 0 && ageSeconds < 86_400 && <span className="muted"> ({when(value)})</span>}
    </time>
  )
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="run-fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  )
}

function Selection({ run }: { run: RunView }) {
  const parts = [
    run.select ? `--select ${run.select}` : null,
    run.exclude ? `--exclude ${run.exclude}` : null,
    run.selector ? `--selector ${run.selector}` : null,
    run.full_refresh ? '--full-refresh' : null,
  ].filter(Boolean)
  return parts.length ? <code>{parts.join(' ')}</code> : <span className="muted">everything</span>
}

/** What dbt ran against what the plan said; nothing when they agree. */
export function Deviation({ deviation }: { deviation: RunView['deviation'] }) {
  const unplanned = deviation?.unplanned ?? []
  const missing = deviation?.missing ?? []
  if (unplanned.length === 0 && missing.length === 0) return null
  const list = (ids: string[]) => (
    <ul>
      {ids.map((id) => (
        <li key={id} title={id}>
          <code>{nodeLabel(id)}</code>
        </li>
      ))}
    </ul>
  )
  return (
    <div className="run-deviation" role="note" data-testid="run-deviation">
      <strong>dbt did not do exactly what the plan said.</strong>
      {unplanned.length > 0 && (
        <div>
          Executed but not planned ({unplanned.length}): {list(unplanned)}
        </div>
      )}
      {missing.length > 0 && (
        <div>
          Planned but never reported ({missing.length}): {list(missing)}
        </div>
      )}
    </div>
  )
}

export function RunSummary({ run }: { run: RunView }) {
  // only this part ticks while the run goes on, not the whole page (the plan can be a long table)
  const now = useNow(Boolean(run.started_at) && !run.finished_at)
  const elapsed = runSeconds(run, now)
  const failed = run.status === 'failed' || run.status === 'rejected' || run.status === 'canceled'
  return (
    <div className="run-summary card">
      {run.message && (
        <p className={`run-message${failed ? ' bad' : ''}`} data-testid="run-message">
          {run.reason && run.reason !== run.status && <code className="run-reason">{run.reason}</code>} {run.message}
        </p>
      )}
      <dl className="run-facts">
        <Fact label="Project / env">
          <Link to={paths.graph(run.project_id)}>{run.project_id}</Link> / <strong>{run.environment_id}</strong>
        </Fact>
        <Fact label="Selection">
          <Selection run={run} />
        </Fact>
        <Fact label="Requested">
          {run.requested_by} · <At value={run.requested_at} />
        </Fact>
        <Fact label="Decided">
          {run.decided_by ? (
            <>
              {run.decided_by} · <At value={run.decided_at} />
              {run.comment ? <span className="run-comment">“{run.comment}”</span> : null}
            </>
          ) : (
            <span className="muted">not yet</span>
          )}
        </Fact>
        <Fact label="Started">
          <At value={run.started_at} />
          {run.queued_at && !run.started_at && (
            <span className="muted"> (queued <At value={run.queued_at} />)</span>
          )}
        </Fact>
        <Fact label="Finished">
          <At value={run.finished_at} />
        </Fact>
        <Fact label="Duration">
          {elapsed === null ? <span className="muted">—</span> : `${seconds(elapsed)}${run.finished_at ? '' : ' so far'}`}
        </Fact>
        <Fact label="Nodes">
          <NodeCounts counts={run.node_counts} />
        </Fact>
        {(run.attempt ?? 0) > 0 && (
          <Fact label="Execution">
            attempt {run.attempt}
            {run.runner_id && <span className="muted"> · {run.runner_id}</span>}
            {run.dbt_version && <span className="muted"> · dbt {run.dbt_version}</span>}
          </Fact>
        )}
        {run.cancel_requested_at && (
          <Fact label="Cancel asked">
            {run.cancel_requested_by} · <At value={run.cancel_requested_at} />
            {run.cancel_reason ? <span className="run-comment">“{run.cancel_reason}”</span> : null}
          </Fact>
        )}
      </dl>
      <Deviation deviation={run.deviation} />
    </div>
  )
}
