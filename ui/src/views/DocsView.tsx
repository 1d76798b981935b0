// A node's documentation, like dbt docs but live: what it is, its columns with the warehouse's types, its tests
// and their last status, its neighbours, and its SQL. Without a node in the URL: a searchable index of the
// project's nodes. Descriptions are untrusted text from the project's YAML: they render as text, never as HTML.
import { useRegisterActions, type Action } from 'kbar'
import { useMemo, useState, type ReactNode } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import type { NodeDetail, OutlineNode } from '@/api/client'
import { ApiError } from '@/api/client'
import { useNode, useOutline } from '@/api/hooks'
import { useNodeTests, type NodeTest } from '@/api/nodeTests'
import { paths } from '@/app/routes'
import { useTenant } from '@/app/tenant'
import { Breakable } from '@/components/Breakable'
import { Empty, ErrorBox, Loading, Page, StatusBadge } from '@/components/common'
import { SqlViewer } from '@/components/monaco'
import { nodeLabel } from '@/lib/format'
import { mergeColumns, metaText, searchDocs, TEST_TYPES } from './docsModel'
import './docs.css'

export default function DocsView() {
  const tenant = useTenant()
  const params = useParams()
  const project = params.project ?? ''
  const uniqueId = params['*'] ?? ''
  return uniqueId ? (
    <NodeDocs key={uniqueId} tenant={tenant} project={project} uniqueId={uniqueId} />
  ) : (
    <DocsIndex tenant={tenant} project={project} />
  )
}

/** unique_id -> outline node, to name the neighbours of a node (the palette keeps the outline cached). */
function useOutlineIndex(tenant: string, project: string): Map<string, OutlineNode> {
  const outline = useOutline(tenant, project)
  return useMemo(() => new Map((outline.data?.nodes ?? []).map((n) => [n.unique_id, n])), [outline.data])
}

// ---------------------------------------------------------------------------------------------------------------
// The index

export function DocsIndex({ tenant, project }: { tenant: string; project: string }) {
  const outline = useOutline(tenant, project)
  const [type, setType] = useState('')
  const [query, setQuery] = useState('')
  const nodes = outline.data?.nodes
  const types = useMemo(() => [...new Set((nodes ?? []).map((n) => n.resource_type))].sort(), [nodes])
  const found = useMemo(() => searchDocs(nodes ?? [], type, query), [nodes, type, query])

  return (
    <Page
      title="Docs"
      actions={
        <div className="row">
          <input
            type="search"
            placeholder="Search by name, id, path or tag…"
            aria-label="Search the docs"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            autoFocus
          />
          <select aria-label="Resource type" value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">All but tests</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
      }
    >
      {outline.isPending && <Loading what="Loading the project's nodes" />}
      {outline.isError && <ErrorBox error={outline.error} title="Could not load the project's nodes" />}
      {outline.data && found.length === 0 && <Empty>No node matches.</Empty>}
      {found.length > 0 && (
        <table data-testid="docs-index">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Materialized</th>
              <th>Path</th>
              <th>Tags</th>
            </tr>
          </thead>
          <tbody>
            {found.map((n) => (
              <tr key={n.unique_id}>
                <td>
                  <Link to={paths.docs(project, n.unique_id)} title={n.unique_id}>
                    {n.version ? `${n.name} v${n.version}` : n.name}
                  </Link>
                </td>
                <td>
                  <TypeBadge type={n.resource_type} />
                </td>
                <td>{n.materialized ?? '—'}</td>
                <td className="mono">{n.path || '—'}</td>
                <td>
                  <Chips values={n.tags ?? []} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  )
}

// ---------------------------------------------------------------------------------------------------------------
// One node

function NodeDocs({ tenant, project, uniqueId }: { tenant: string; project: string; uniqueId: string }) {
  const detail = useNode(tenant, project, uniqueId)
  const outline = useOutlineIndex(tenant, project)
  useNodeActions(project, detail.data)

  if (detail.isPending) return <Loading what="Loading the docs" />
  if (detail.isError)
    return (
      <Page title={nodeLabel(uniqueId)}>
        {detail.error instanceof ApiError && detail.error.status === 404 ? (
          <Empty>
            <span className="mono">{uniqueId}</span> is not in the latest graph version.{' '}
            <Link to={paths.docs(project)}>Back to the docs index</Link>
          </Empty>
        ) : (
          <ErrorBox error={detail.error} title="Could not load the node" />
        )}
      </Page>
    )
  return <NodeDocsPage tenant={tenant} project={project} detail={detail.data} outline={outline} />
}

export function NodeDocsPage({
  tenant,
  project,
  detail,
  outline,
}: {
  tenant: string
  project: string
  detail: NodeDetail
  outline: Map<string, OutlineNode>
}) {
  const node = detail.node.node
  return (
    <Page
      title={
        <span className="docs-title">
          <span data-testid="docs-title">{node.version ? `${node.name} v${node.version}` : node.name}</span>
          <TypeBadge type={node.resource_type} />
          {node.materialized && <span className="badge">{node.materialized}</span>}
          {detail.node.last_status && (
            <span title="Last status">
              <StatusBadge status={detail.node.last_status} />
            </span>
          )}
        </span>
      }
      actions={
        <>
          <Link to={paths.docs(project)}>All docs</Link>
          <Link className="button-link" to={paths.graph(project, node.unique_id)}>
            Open in graph
          </Link>
        </>
      }
    >
      <p className="mono muted docs-id">{node.unique_id}</p>
      <div className="docs-layout">
        <div className="stack docs-main">
          <Description text={node.description ?? ''} />
          <ColumnsTable detail={detail} />
          <NodeCode detail={detail} />
        </div>
        <aside className="stack docs-aside">
          <Properties project={project} detail={detail} />
          <TestsCard tenant={tenant} project={project} detail={detail} />
          <Lineage project={project} detail={detail} outline={outline} />
        </aside>
      </div>
    </Page>
  )
}

/** Palette actions for the node on screen. */
function useNodeActions(project: string, detail: NodeDetail | undefined) {
  const navigate = useNavigate()
  const node = detail?.node
  const actions = useMemo<Action[]>(() => {
    if (!node) return []
    const list: Action[] = [
      {
        id: 'docs-open-in-graph',
        name: `Open ${node.node.name} in graph`,
        section: 'Docs',
        perform: () => navigate(paths.graph(project, node.node.unique_id)),
      },
    ]
    if (node.valid_from > 0)
      list.push({
        id: 'docs-last-change',
        name: `Show the last change of ${node.node.name}`,
        subtitle: `diff v${node.valid_from - 1} → v${node.valid_from}`,
        section: 'Docs',
        perform: () => navigate(lastChangePath(project, node.node.unique_id, node.valid_from)),
      })
    return list
  }, [node, project, navigate])
  useRegisterActions(actions, [actions])
}

/** The Diff view at the version where the node took its current form, with the node selected. */
function lastChangePath(project: string, uniqueId: string, validFrom: number): string {
  return paths.diff(project, validFrom - 1, validFrom, uniqueId)
}

function TypeBadge({ type }: { type: string }) {
  return <span className={`badge kind-badge kind-${type}`}>{type}</span>
}

function Chips({ values }: { values: readonly string[] }) {
  if (values.length === 0) return <span className="muted">—</span>
  return (
    <span className="chips">
      {values.map((v) => (
        <span key={v} className="chip">
          {v}
        </span>
      ))}
    </span>
  )
}

/** Plain text with its line breaks: React escapes it, so markup in a description shows as the characters it is. */
export function Description({ text }: { text: string }) {
  return (
    <section className="card">
      <h2>Description</h2>
      {text.trim() ? <p className="docs-text">{text}</p> : <p className="muted">No description.</p>}
    </section>
  )
}

function Properties({ project, detail }: { project: string; detail: NodeDetail }) {
  const node = detail.node.node
  const meta = Object.entries(node.meta ?? {})
  const rows: [string, ReactNode][] = [
    ['Owner', detail.owner ?? <span className="muted">—</span>],
    ['Tags', <Chips values={node.tags ?? []} />],
    ['File', <span className="mono">{node.original_file_path ? <Breakable text={node.original_file_path} /> : '—'}</span>],
    [
      'Relation',
      node.relation_name ? (
        <span className="mono">
          <Breakable text={node.relation_name} />
        </span>
      ) : (
        <span className="muted">—</span>
      ),
    ],
    ['Access', node.access ?? '—'],
    ['Group', node.group ?? '—'],
    ['Version', node.version ? `v${node.version}${node.latest_version ? ` (latest v${node.latest_version})` : ''}` : '—'],
    ['Contract', node.contract?.enforced ? 'enforced' : 'not enforced'],
    ['Package', node.package_name],
    [
      'Current since',
      <Link to={lastChangePath(project, node.unique_id, detail.node.valid_from)}>v{detail.node.valid_from} (diff)</Link>,
    ],
  ]
  return (
    <section className="card">
      <h2>Properties</h2>
      <dl className="docs-props">
        {rows.map(([label, value]) => (
          <div key={label} className="docs-prop">
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
        {meta.length > 0 && (
          <div className="docs-prop">
            <dt>Meta</dt>
            <dd>
              <dl className="docs-meta">
                {meta.map(([key, value]) => (
                  <div key={key}>
                    <dt className="mono">{key}</dt>
                    <dd className="mono">{metaText(value)}</dd>
                  </div>
                ))}
              </dl>
            </dd>
          </div>
        )}
      </dl>
    </section>
  )
}

function ColumnsTable({ detail }: { detail: NodeDetail }) {
  const columns = mergeColumns(detail.node.node.columns ?? [], detail.catalog?.columns ?? [])
  return (
    <section className="card" data-testid="docs-columns">
      <h2>
        Columns <span className="muted">{columns.length}</span>
      </h2>
      {columns.length === 0 ? (
        <p className="muted">No column documented, and no catalog for this node.</p>
      ) : (
        <table className="docs-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {columns.map((c) => (
              <tr key={c.name}>
                <td className="mono">
                  {c.name}
                  {!c.inCatalog && detail.catalog && (
                    <span className="badge warn" title="Documented, but the warehouse relation has no such column">
                      not in warehouse
                    </span>
                  )}
                </td>
                <td className="mono">{c.type ?? <span className="muted">—</span>}</td>
                <td className="docs-text">{c.description || <span className="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}

function TestsCard({ tenant, project, detail }: { tenant: string; project: string; detail: NodeDetail }) {
  const uniqueId = detail.node.node.unique_id
  const tests = useNodeTests(tenant, project, uniqueId, detail.tests)
  return (
    <section className="card" data-testid="docs-tests">
      <h2>
        Tests <span className="muted">{detail.tests.length}</span>
      </h2>
      {detail.tests.length === 0 ? (
        <p className="muted">No test.</p>
      ) : tests.isPending ? (
        <Loading what="Loading the tests" />
      ) : tests.isError ? (
        <ErrorBox error={tests.error} title="Could not load the tests" />
      ) : (
        <ul className="docs-list">
          {tests.data.map((test) => (
            <TestItem key={test.uniqueId} project={project} test={test} />
          ))}
        </ul>
      )}
    </section>
  )
}

function TestItem({ project, test }: { project: string; test: NodeTest }) {
  const kind = test.testName ?? (test.resourceType === 'unit_test' ? 'unit test' : 'singular')
  return (
    <li>
      <StatusBadge status={test.lastStatus} />{' '}
      <Link to={paths.docs(project, test.uniqueId)} title={test.uniqueId}>
        {kind}
      </Link>
      {test.column && <span className="mono muted"> · {test.column}</span>}
      {!test.testName && <span className="muted"> · {test.name}</span>}
    </li>
  )
}

function Lineage({ project, detail, outline }: { project: string; detail: NodeDetail; outline: Map<string, OutlineNode> }) {
  const isTest = (id: string) => TEST_TYPES.has(outline.get(id)?.resource_type ?? id.split('.')[0] ?? '')
  const children = detail.children.filter((id) => !isTest(id))
  return (
    <section className="card" data-testid="docs-lineage">
      <h2>Lineage</h2>
      <NeighbourList project={project} title="Upstream" ids={detail.parents} outline={outline} />
      <NeighbourList project={project} title="Downstream" ids={children} outline={outline} />
      <Link to={paths.graph(project, detail.node.node.unique_id)}>Open in graph</Link>
    </section>
  )
}

function NeighbourList({
  project,
  title,
  ids,
  outline,
}: {
  project: string
  title: string
  ids: string[]
  outline: Map<string, OutlineNode>
}) {
  return (
    <>
      <h3>
        {title} <span className="muted">{ids.length}</span>
      </h3>
      {ids.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ul className="docs-list">
          {ids.map((id) => {
            const known = outline.get(id)
            return (
              <li key={id}>
                <TypeBadge type={known?.resource_type ?? id.split('.')[0] ?? 'node'} />{' '}
                <Link to={paths.docs(project, id)} title={id}>
                  {nodeLabel(id, known?.name)}
                </Link>
              </li>
            )
          })}
        </ul>
      )}
    </>
  )
}

type CodeKind = 'raw' | 'compiled'

function NodeCode({ detail }: { detail: NodeDetail }) {
  const [kind, setKind] = useState<CodeKind>(detail.raw_code ? 'raw' : 'compiled')
  const node = detail.node.node
  if (!detail.raw_code && !detail.compiled_code)
    return (
      <section className="card" data-testid="docs-sql">
        <h2>Code</h2>
        <p className="muted">A {node.resource_type} has no SQL of its own.</p>
      </section>
    )
  const code = kind === 'raw' ? detail.raw_code : detail.compiled_code
  const language = !node.language || node.language === 'sql' ? 'sql' : 'plaintext'
  return (
    <section className="card" data-testid="docs-sql">
      <div className="tabs" role="tablist" aria-label="Code">
        {(['raw', 'compiled'] as const).map((k) => (
          <button
            key={k}
            type="button"
            role="tab"
            aria-selected={kind === k}
            className={kind === k ? 'active' : ''}
            onClick={() => setKind(k)}
          >
            {k === 'raw' ? 'Raw SQL' : 'Compiled SQL'}
          </button>
        ))}
      </div>
      {code ? (
        <div className="monaco-box">
          <SqlViewer value={code} language={language} height="100%" />
        </div>
      ) : (
        <p className="muted">
          {kind === 'compiled'
            ? 'No compiled SQL: a manifest has it when it comes from dbt compile, run or build.'
            : 'No raw SQL in the manifest.'}
        </p>
      )}
    </section>
  )
}
