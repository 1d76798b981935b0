// The side panel of a selected node: what it is, how it is built, who owns it, its columns and tests, and its
// last status; with the ways on from here (focus its neighbourhood, read its docs, plan it).
import { Link } from 'react-router'
import { useNode } from '@/api/hooks'
import { paths } from '@/app/routes'
import { ErrorBox, Loading, StatusBadge } from '@/components/common'
import { nodeLabel } from '@/lib/format'

type Props = {
  tenant: string
  project: string
  uniqueId: string
  statuses: Readonly<Record<string, string>>
  onFocus: (uniqueId: string) => void
  onClose: () => void
}

export function NodePanel({ tenant, project, uniqueId, statuses, onFocus, onClose }: Props) {
  const detail = useNode(tenant, project, uniqueId)
  if (detail.isPending) return <aside className="side-panel"><Loading /></aside>
  if (detail.isError) return <aside className="side-panel"><ErrorBox error={detail.error} /></aside>
  const { node } = detail.data.node
  const catalogTypes = new Map((detail.data.catalog?.columns ?? []).map((c) => [c.name.toLowerCase(), c.type]))
  const columns = node.columns?.length
    ? node.columns.map((c) => ({ name: c.name, type: catalogTypes.get(c.name.toLowerCase()) ?? c.data_type ?? null }))
    : (detail.data.catalog?.columns ?? []).map((c) => ({ name: c.name, type: c.type ?? null }))
  return (
    <aside className="side-panel" data-testid="node-panel">
      <div className="row">
        <h2>{node.name}</h2>
        <button type="button" className="link" onClick={onClose} aria-label="Close panel" style={{ marginLeft: 'auto' }}>
          ✕
        </button>
      </div>
      <div className="muted mono small">{node.unique_id}</div>
      <dl>
        <dt>Type</dt>
        <dd>{node.resource_type}</dd>
        <dt>Materialized</dt>
        <dd>{node.materialized ?? '—'}</dd>
        <dt>Owner</dt>
        <dd>{detail.data.owner ?? '—'}</dd>
        <dt>Tags</dt>
        <dd className="chips">{(node.tags ?? []).length ? node.tags?.map((t) => <span key={t} className="chip">{t}</span>) : '—'}</dd>
        <dt>Last status</dt>
        <dd>
          <StatusBadge status={detail.data.node.last_status} />
        </dd>
        <dt>Relation</dt>
        <dd className="mono small">{node.relation_name ?? '—'}</dd>
        <dt>File</dt>
        <dd className="mono small">{node.original_file_path || '—'}</dd>
      </dl>
      {node.description && <p className="description">{node.description}</p>}
      <div className="row">
        <button type="button" onClick={() => onFocus(uniqueId)}>
          Focus neighbourhood
        </button>
        <Link to={paths.docs(project, uniqueId)}>Docs</Link>
        <Link to={paths.plan(project, `+${node.name}`)}>Plan +{node.name}</Link>
      </div>
      <h3>Columns ({columns.length})</h3>
      {columns.length === 0 ? (
        <p className="muted">No columns declared or catalogued.</p>
      ) : (
        <table className="compact" data-testid="node-columns">
          <tbody>
            {columns.map((c) => (
              <tr key={c.name}>
                <td className="mono">{c.name}</td>
                <td className="muted mono">{c.type ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Tests ({detail.data.tests.length})</h3>
      <ul className="plain stack">
        {detail.data.tests.map((test) => (
          <li key={test} className="row">
            <StatusBadge status={statuses[test] ?? null} />
            <Link to={paths.docs(project, test)} className="small">
              {nodeLabel(test)}
            </Link>
          </li>
        ))}
      </ul>
      <h3>Lineage</h3>
      <p className="small">
        {detail.data.parents.length} parent(s), {detail.data.children.length} child(ren)
      </p>
    </aside>
  )
}
