// The dashboard: what needs attention now (runs waiting for my decision, recent failures), how current each
// project's graph is, the latest runs, and what finished runs were expected to take and cost against what they took.
import { Link } from 'react-router'
import type { Dashboard as DashboardData, RunView } from '@/api/client'
import { useDashboard } from '@/api/hooks'
import { paths } from '@/app/routes'
import { useTenant } from '@/app/tenant'
import { Empty, ErrorBox, Loading, Page, StatusBadge } from '@/components/common'
import { duration, money, seconds, shortId, when } from '@/lib/format'

function RunLine({ run }: { run: RunView }) {
  return (
    <li className="row">
      <Link to={paths.run(run.run_id)} className="mono">
        {shortId(run.run_id)}
      </Link>
      <StatusBadge status={run.status} />
      <span>
        {run.project_id}/{run.environment_id}
      </span>
      <span className="muted">{run.select ?? '*'}</span>
      <span className="muted">
        by {run.requested_by}, {when(run.requested_at)}
      </span>
    </li>
  )
}

function Attention({ data }: { data: DashboardData }) {
  return (
    <div className="cards">
      <div className="card" data-testid="awaiting-approval">
        <h2>Awaiting my approval</h2>
        <div className="metric">{data.awaiting_my_approval.length}</div>
        {data.awaiting_others > 0 && <p className="muted">{data.awaiting_others} more wait for someone else's decision</p>}
        <ul className="stack plain">
          {data.awaiting_my_approval.slice(0, 5).map((run) => (
            <RunLine key={run.run_id} run={run} />
          ))}
        </ul>
      </div>
      <div className="card" data-testid="failures">
        <h2>Failures, last 7 days</h2>
        <div className="metric">{data.failures.length}</div>
        <ul className="stack plain">
          {data.failures.slice(0, 5).map((run) => (
            <li key={run.run_id} className="stack">
              <RunLine run={run} />
              {run.message && <span className="muted small">{run.message}</span>}
            </li>
          ))}
        </ul>
      </div>
      {data.projects.map((project) => (
        <div className="card" key={project.project_id} data-testid={`project-${project.project_id}`}>
          <h2>
            <Link to={paths.graph(project.project_id)}>{project.name}</Link>
          </h2>
          {project.graph_version == null ? (
            <p className="muted">
              Nothing ingested yet. <Link to={paths.artifacts(project.project_id)}>Ingest artifacts</Link>
            </p>
          ) : (
            <dl className="facts">
              <dt>Graph</dt>
              <dd>
                v{project.graph_version}: {project.nodes?.toLocaleString()} nodes, {project.edges?.toLocaleString()} edges
              </dd>
              <dt>Ingested</dt>
              <dd>{when(project.ingested_at)}</dd>
              <dt>Last status</dt>
              <dd className="chips">
                {Object.entries(project.node_statuses ?? {}).map(([status, n]) => (
                  <span key={status} className="chip">
                    {status} {n}
                  </span>
                ))}
                {Object.keys(project.node_statuses ?? {}).length === 0 && <span className="muted">never run</span>}
              </dd>
              <dt>Sources</dt>
              <dd className="chips">
                {Object.entries(project.source_freshness ?? {}).map(([status, n]) => (
                  <span key={status} className="chip">
                    {status} {n}
                  </span>
                ))}
                {Object.keys(project.source_freshness ?? {}).length === 0 && <span className="muted">no freshness checked</span>}
              </dd>
            </dl>
          )}
        </div>
      ))}
    </div>
  )
}

function RecentRuns({ runs }: { runs: RunView[] }) {
  if (runs.length === 0) return <Empty>No runs yet. Build a plan from the Execution plan view and run it.</Empty>
  return (
    <table data-testid="recent-runs">
      <thead>
        <tr>
          <th>Run</th>
          <th>Status</th>
          <th>Project / env</th>
          <th>Selection</th>
          <th>Requested</th>
          <th>Duration</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((run) => (
          <tr key={run.run_id}>
            <td>
              <Link to={paths.run(run.run_id)} className="mono">
                {shortId(run.run_id)}
              </Link>
            </td>
            <td>
              <StatusBadge status={run.status} />
            </td>
            <td>
              {run.project_id}/{run.environment_id}
            </td>
            <td className="mono">{run.select ?? '*'}</td>
            <td>
              {when(run.requested_at)} <span className="muted">by {run.requested_by}</span>
            </td>
            <td>{duration(run.started_at, run.finished_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function Costs({ data }: { data: DashboardData }) {
  if (data.costs.length === 0) return <Empty>No finished runs yet: estimates meet actuals here once runs finish.</Empty>
  return (
    <table data-testid="costs">
      <thead>
        <tr>
          <th>Run</th>
          <th>Status</th>
          <th>Estimated time</th>
          <th>Actual time</th>
          <th>Estimated cost</th>
          <th title="The actual compute time at the plan's own rate">Actual cost</th>
        </tr>
      </thead>
      <tbody>
        {data.costs.map((cost) => (
          <tr key={cost.run_id}>
            <td>
              <Link to={paths.run(cost.run_id)} className="mono">
                {shortId(cost.run_id)}
              </Link>{' '}
              <span className="muted">
                {cost.project_id}/{cost.environment_id}
              </span>
            </td>
            <td>
              <StatusBadge status={cost.status} />
            </td>
            <td>{seconds(cost.estimated_seconds)}</td>
            <td>{seconds(cost.actual_seconds)}</td>
            <td>{money(cost.estimated_cost, cost.currency)}</td>
            <td>{money(cost.actual_cost, cost.currency)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export default function Dashboard() {
  const tenant = useTenant()
  const board = useDashboard(tenant)
  return (
    <Page title="Dashboard">
      {board.isPending && <Loading />}
      {board.isError && <ErrorBox error={board.error} />}
      {board.data && (
        <>
          <Attention data={board.data} />
          <h2 className="section">Recent runs</h2>
          <RecentRuns runs={board.data.recent_runs} />
          <h2 className="section">Estimated against actual</h2>
          <p className="muted small">
            Time is the compute dbt reported for the run's nodes; a cost is shown where the environment prices its
            adapter, at the rate the plan used.
          </p>
          <Costs data={board.data} />
        </>
      )}
    </Page>
  )
}
