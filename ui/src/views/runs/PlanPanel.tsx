// The Plan tab: the plan this run executed (or waits to execute) — its headline, who must approve it, its totals,
// and every item in execution order with the policy reasons behind its action.
import type { ExecutionPlan, PlanItem, RunDetail, Schemas } from '@/api/client'
import { Empty } from '@/components/common'
import { money, nodeLabel, seconds } from '@/lib/format'

function Totals({ totals }: { totals: Schemas['PlanTotals'] }) {
  const facts: [string, string][] = [
    ['Run', String(totals.run ?? 0)],
    ['Partial', String(totals.partial ?? 0)],
    ['Skip', String(totals.skip ?? 0)],
    ['Work', `~${seconds(totals.estimated_seconds ?? 0)}`],
    ['Wall clock', `~${seconds(totals.estimated_duration_seconds ?? 0)}`],
    ['Cost', totals.estimated_cost !== null && totals.estimated_cost !== undefined ? money(totals.estimated_cost, totals.currency) : `unpriced (${totals.unpriced ?? 0})`],
  ]
  if (totals.not_executable) facts.push(['Not executable', String(totals.not_executable)])
  return (
    <dl className="run-plan-totals">
      {facts.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  )
}

function Estimate({ estimate }: { estimate: PlanItem['estimate'] }) {
  if (!estimate) return <span className="muted">—</span>
  const spread = estimate.seconds_spread ? ` ± ${seconds(estimate.seconds_spread)}` : ''
  return (
    <span title={`confidence: ${estimate.confidence}`}>
      {seconds(estimate.seconds)}
      {spread}
      {estimate.cost !== null && estimate.cost !== undefined && <span className="muted"> · {money(estimate.cost, estimate.currency)}</span>}
    </span>
  )
}

function Reasons({ reasons }: { reasons: PlanItem['reasons'] }) {
  if (!reasons?.length) return <span className="muted">—</span>
  return (
    <ul className="run-reasons">
      {reasons.map((r, i) => (
        <li key={i} className={r.failure ? 'run-failure' : undefined}>
          <code title={`${r.policy_id} v${r.policy_version}`}>{r.code}</code> {r.message}
        </li>
      ))}
    </ul>
  )
}

function PlanItems({ plan }: { plan: ExecutionPlan }) {
  const items = [...(plan.items ?? [])].sort((a, b) => (a.order ?? 0) - (b.order ?? 0))
  if (items.length === 0) return <Empty>The plan has no items.</Empty>
  return (
    <div className="run-table-scroll">
      <table className="run-plan-items" data-testid="plan-items">
        <thead>
          <tr>
            <th>#</th>
            <th>Wave</th>
            <th>Node</th>
            <th>Action</th>
            <th>Reasons</th>
            <th>Estimate</th>
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={item.node_uuid}>
              <td className="run-num">{item.order ?? 0}</td>
              <td className="run-num">{item.wave ?? 0}</td>
              <td className="run-plan-node">
                <span title={item.unique_id}>{nodeLabel(item.unique_id)}</span> <span className="muted">{item.resource_type}</span>
              </td>
              <td>
                <span className={`action ${item.action}`}>{item.action}</span>
              </td>
              <td className="run-plan-why">
                <Reasons reasons={item.reasons} />
              </td>
              <td className="run-nowrap">
                <Estimate estimate={item.estimate} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function PlanPanel({ detail }: { detail: RunDetail }) {
  const { plan, explain } = detail
  if (!plan) return <Empty>This run has no plan yet.</Empty>
  const approvals = explain?.approvals ?? []
  return (
    <div className="stack">
      {explain && <p className="run-plan-headline">{explain.headline}</p>}
      {approvals.length > 0 && (
        <div className="card run-approvals">
          <h2>Approval required</h2>
          <ul>
            {approvals.map((a, i) => (
              <li key={i}>
                <strong>{a.role}</strong>: {a.message} <span className="muted">({a.policy}{a.unique_id ? `, ${nodeLabel(a.unique_id)}` : ''})</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      <Totals totals={plan.totals} />
      <PlanItems plan={plan} />
      {plan.plan_hash && (
        <p className="muted run-small">
          Plan <code>{plan.plan_id ?? '—'}</code> · hash <code title={plan.plan_hash}>{plan.plan_hash.slice(0, 12)}</code>
        </p>
      )}
    </div>
  )
}
