// The Plan tab: the plan this run executed (or waits to execute) — its headline, who must approve it, its totals,
// and every item in execution order with the policy reasons behind its action.
import type { RunDetail, Schemas } from '@/api/client'
import { Empty } from '@/components/common'
import { PlanItems } from '@/components/PlanItems'
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
