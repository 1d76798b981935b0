// What was ingested into a project: each ingestion (when, by whom, which artifact files, with a download link) and
// each graph version it made (dbt version, adapter, what changed, a link to its diff); plus an upload form for
// those who may write.
import { useRegisterActions, type Action } from 'kbar'
import { useMemo } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import type { GraphVersion, Ingestion } from '@/api/client'
import { useIngestions, useVersions } from '@/api/hooks'
import { paths } from '@/app/routes'
import { useMeContext } from '@/app/tenant'
import { Empty, ErrorBox, Loading, Page } from '@/components/common'
import { when } from '@/lib/format'
import { artifactUrl, bytes, readArtifacts, type StoredArtifact } from './artifactsModel'
import { IngestForm, Warnings } from './IngestForm'
import './docs.css'

export default function ArtifactsView() {
  const me = useMeContext()
  const project = useParams().project ?? ''
  useArtifactActions(project, me.can_write)
  return (
    <Page title="Artifacts">
      {me.can_write && <IngestForm tenant={me.tenant_id} project={project} />}
      <VersionsSection tenant={me.tenant_id} project={project} />
      <IngestionsSection tenant={me.tenant_id} project={project} />
    </Page>
  )
}

function useArtifactActions(project: string, canWrite: boolean) {
  const navigate = useNavigate()
  const actions = useMemo<Action[]>(() => {
    const list: Action[] = [
      {
        id: 'artifacts-diff-latest',
        name: 'Diff the latest version against its previous',
        section: 'Artifacts',
        perform: () => navigate(paths.diff(project)),
      },
    ]
    if (canWrite)
      list.push({
        id: 'artifacts-ingest',
        name: 'Ingest artifacts',
        subtitle: 'upload manifest.json and friends',
        section: 'Artifacts',
        perform: () => {
          const input = document.getElementById('ingest-manifest')
          input?.scrollIntoView({ block: 'center' })
          input?.focus()
        },
      })
    return list
  }, [project, canWrite, navigate])
  useRegisterActions(actions, [actions])
}

// ---------------------------------------------------------------------------------------------------------------
// Graph versions

function VersionsSection({ tenant, project }: { tenant: string; project: string }) {
  const versions = useVersions(tenant, project)
  return (
    <section className="artifacts-section">
      <h2>Graph versions</h2>
      {versions.isPending && <Loading what="Loading graph versions" />}
      {versions.isError && <ErrorBox error={versions.error} title="Could not load the graph versions" />}
      {versions.data && versions.data.items.length === 0 && <Empty>No graph version yet.</Empty>}
      {versions.data && versions.data.items.length > 0 && <VersionsTable project={project} versions={versions.data.items} />}
    </section>
  )
}

export function VersionsTable({ project, versions }: { project: string; versions: GraphVersion[] }) {
  return (
    <table data-testid="versions">
      <thead>
        <tr>
          <th>Version</th>
          <th>Created</th>
          <th>dbt</th>
          <th>Adapter</th>
          <th>Nodes · edges</th>
          <th>Changes</th>
          <th>Diff</th>
        </tr>
      </thead>
      <tbody>
        {versions.map((v) => (
          <tr key={v.graph_version}>
            <td>
              <strong>v{v.graph_version}</strong>
              {v.dbt_project_name && <span className="muted"> · {v.dbt_project_name}</span>}
            </td>
            <td title={v.created_at}>{when(v.created_at)}</td>
            <td>{v.dbt_version ?? '—'}</td>
            <td>{v.adapter_type ?? '—'}</td>
            <td>
              {v.nodes} · {v.edges}
            </td>
            <td>
              <VersionChanges version={v} />
            </td>
            <td>
              <Link to={paths.diff(project, v.previous_version, v.graph_version)}>
                v{v.previous_version} → v{v.graph_version}
              </Link>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function VersionChanges({ version: v }: { version: GraphVersion }) {
  const counts = [
    ['added', v.added],
    ['changed', v.changed],
    ['removed', v.removed],
    ['renamed', v.renamed],
  ] as const
  return (
    <span className="version-changes">
      {counts.map(([kind, n]) => (
        <span key={kind} className={`diff-count ${kind}${n === 0 ? ' zero' : ''}`}>
          <strong>{n}</strong> {kind}
        </span>
      ))}
      {v.modified > 0 && (
        <span className="muted" title="Nodes that dbt's state:modified selector would pick">
          {v.modified} state:modified
        </span>
      )}
      {v.macros_changed > 0 && <span className="muted">{v.macros_changed} macros</span>}
    </span>
  )
}

// ---------------------------------------------------------------------------------------------------------------
// Ingestions

function IngestionsSection({ tenant, project }: { tenant: string; project: string }) {
  const ingestions = useIngestions(tenant, project)
  return (
    <section className="artifacts-section">
      <h2>Ingestions</h2>
      {ingestions.isPending && <Loading what="Loading ingestions" />}
      {ingestions.isError && <ErrorBox error={ingestions.error} title="Could not load the ingestions" />}
      {ingestions.data && ingestions.data.items.length === 0 && <Empty>Nothing ingested yet.</Empty>}
      {ingestions.data && ingestions.data.items.length > 0 && (
        <IngestionList tenant={tenant} project={project} ingestions={ingestions.data.items} />
      )}
    </section>
  )
}

export function IngestionList({ tenant, project, ingestions }: { tenant: string; project: string; ingestions: Ingestion[] }) {
  return (
    <ol className="ingestions" data-testid="ingestions">
      {ingestions.map((ingestion) => (
        <li key={ingestion.ingestion_id} className="card">
          <IngestionHead ingestion={ingestion} />
          <ArtifactTable tenant={tenant} project={project} artifacts={readArtifacts(ingestion.artifacts)} />
          {ingestion.warnings.length > 0 && <Warnings warnings={ingestion.warnings} />}
        </li>
      ))}
    </ol>
  )
}

function IngestionHead({ ingestion }: { ingestion: Ingestion }) {
  return (
    <div className="ingestion-head">
      <strong>v{ingestion.graph_version}</strong>
      {ingestion.new_version ? <span className="badge ok">new version</span> : <span className="badge">same graph</span>}
      <span title={ingestion.recorded_at}>{when(ingestion.recorded_at)}</span>
      <span className="muted">by {ingestion.actor}</span>
      <span className="muted">
        {ingestion.nodes} nodes · {ingestion.edges} edges
      </span>
      {ingestion.unknown_nodes > 0 && (
        <span className="badge warn" title="Statuses or results for nodes the graph does not have">
          {ingestion.unknown_nodes} unknown nodes
        </span>
      )}
    </div>
  )
}

function ArtifactTable({ tenant, project, artifacts }: { tenant: string; project: string; artifacts: StoredArtifact[] }) {
  if (artifacts.length === 0) return <p className="muted">No artifact recorded.</p>
  return (
    <table className="artifact-table">
      {/* fixed widths: the tables of successive ingestions line up */}
      <colgroup>
        <col className="w-kind" />
        <col className="w-schema" />
        <col className="w-dbt" />
        <col className="w-size" />
        <col className="w-sha" />
        <col />
        <col className="w-download" />
      </colgroup>
      <thead>
        <tr>
          <th>Kind</th>
          <th title="dbt artifact schema version">Schema</th>
          <th>dbt</th>
          <th>Size</th>
          <th>sha256</th>
          <th>Key</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {artifacts.map((artifact) => (
          <tr key={artifact.key}>
            <td>
              <strong>{artifact.info.kind}</strong>
              {artifact.info.command && <span className="muted"> ({artifact.info.command})</span>}
            </td>
            <td title={artifact.info.dbt_schema_version}>
              {artifact.info.schema_version !== undefined ? `v${artifact.info.schema_version}` : '—'}
            </td>
            <td>{artifact.info.dbt_version ?? '—'}</td>
            <td>{bytes(artifact.size)}</td>
            <td className="mono" title={artifact.sha256}>
              {artifact.sha256.slice(0, 12)}…
            </td>
            <td className="mono artifact-key" title={artifact.key}>
              {artifact.key}
            </td>
            <td>
              <a href={artifactUrl(tenant, project, artifact.key)} download={`${artifact.info.kind}.json`}>
                Download
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
