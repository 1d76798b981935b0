// The items of an ExecutionPlan in execution order, each with its action, the policy reasons behind it, its
// partition window and its estimate: one table for the plan being built and for the plan a run executed.
import type { ExecutionPlan, PlanItem } from '@/api/client'
import { Empty } from '@/components/common'
import { money, nodeLabel, seconds } from '@/lib/format'

function Estimate({ estimate }: { estimate: PlanItem['estimate'] }) {
  if (!estimate) return <span className="muted">—</span>
  const spread = estimate.seconds_spread ? ` ± ${seconds(estimate.seconds_spread)}` : ''
  return (
    <span title={`${estimate.confidence} confidence`}>
      ~{seconds(estimate.seconds)}
      {spread}
      {estimate.cost !== null && estimate.cost !== undefined && <span className="muted"> · {money(estimate.cost, estimate.currency)}</span>}
    </span>
  )
}

function Reasons({ item }: { item: PlanItem }) {
  if (!item.reasons?.length && !item.window) return <span className="muted">—</span>
  return (
    <ul className="plan-reasons">
      {(item.reasons ?? []).map((r, i) => (
        <li key={i} className={r.failure ? 'failure' : undefined}>
          <code title={`${r.policy_id} v${r.policy_version}`}>{r.code}</code> {r.message}
        </li>
      ))}
      {item.window && (
        <li className="muted">
          window {item.window.start} → {item.window.end} ({item.window.batches} {item.window.batch_size})
        </li>
      )}
    </ul>
  )
}

export function PlanItems({ plan }: { plan: ExecutionPlan }) {
  const items = [...(plan.items ?? [])].sort((a, b) => (a.wave ?? 0) - (b.wave ?? 0) || (a.order ?? 0) - (b.order ?? 0))
  if (items.length === 0) return <Empty>The selection picks nothing dbt would execute.</Empty>
  return (
    <table className="plan-items" data-testid="plan-items">
      <colgroup>
        <col style={{ width: 44 }} />
        <col style={{ width: 56 }} />
        <col style={{ width: '30%' }} />
        <col style={{ width: 84 }} />
        <col />
        <col style={{ width: 150 }} />
      </colgroup>
      <thead>
        <tr>
          <th>#</th>
          <th>Wave</th>
          <th>Node</th>
          <th>Action</th>
          <th>Why</th>
          <th>Estimate</th>
        </tr>
      </thead>
      <tbody>
        {items.map((item) => (
          <tr key={item.node_uuid}>
            <td className="num">{item.order ?? 0}</td>
            <td className="num">{item.wave ?? 0}</td>
            <td>
              <span title={item.unique_id}>{nodeLabel(item.unique_id)}</span> <span className="muted small">{item.resource_type}</span>
            </td>
            <td>
              <span className={`action ${item.action}`}>{item.action}</span>
            </td>
            <td className="small">
              <Reasons item={item} />
            </td>
            <td className="small">
              <Estimate estimate={item.estimate} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
