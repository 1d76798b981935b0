// Two graph versions side by side: what was added, removed, renamed and changed between them, and for one node the
// SQL of each version in Monaco's diff editor. The URL holds the whole state (?from=&to=&node=), so a diff is a link.
import { useRegisterActions, type Action } from 'kbar'
import { useLayoutEffect, useMemo, useRef, useState } from 'react'
import { Link, useParams, useSearchParams } from 'react-router'
import type { GraphVersion, NodeDiff, VersionDiff } from '@/api/client'
import { useDiff, useNode, useVersions } from '@/api/hooks'
import { paths } from '@/app/routes'
import { useTenant } from '@/app/tenant'
import { Breakable } from '@/components/Breakable'
import { Empty, ErrorBox, Loading, Page } from '@/components/common'
import { SqlDiff } from '@/components/monaco'
import { nodeLabel, when } from '@/lib/format'
import {
  chooseVersions,
  codeSides,
  DIFF_KINDS,
  filterDiff,
  findEntry,
  parseVersion,
  totalChanges,
  type DiffKind,
  type VersionPair,
} from './diffModel'
import './docs.css'

/** Past this many entries a section stops rendering more: the filter box narrows them down. */
const SECTION_LIMIT = 300

const KIND_TITLES: Record<DiffKind, string> = {
  added: 'Added',
  removed: 'Removed',
  renamed: 'Renamed',
  changed: 'Changed',
}

export default function DiffView() {
  const tenant = useTenant()
  const project = useParams().project ?? ''
  const [search, setSearch] = useSearchParams()
  const versions = useVersions(tenant, project)
  const pair = versions.data
    ? chooseVersions(versions.data.items, parseVersion(search.get('from')), parseVersion(search.get('to')))
    : null
  const selected = search.get('node')

  const show = (next: VersionPair, node: string | null = selected) => {
    const params = new URLSearchParams({ from: String(next.from), to: String(next.to) })
    if (node) params.set('node', node)
    setSearch(params)
  }
  useDiffActions(versions.data?.items ?? [], pair, show)

  return (
    <Page
      title="Diff"
      wide
      actions={pair && versions.data && <VersionPickers versions={versions.data.items} pair={pair} onChange={show} />}
    >
      {versions.isPending && <Loading what="Loading graph versions" />}
      {versions.isError && <ErrorBox error={versions.error} title="Could not load the graph versions" />}
      {versions.data && !pair && <Empty>No graph version yet: ingest a manifest on the Artifacts page.</Empty>}
      {pair && (
        <DiffBody tenant={tenant} project={project} pair={pair} selected={selected} onSelect={(id) => show(pair, id)} />
      )}
    </Page>
  )
}

/** Palette actions: the usual comparisons without reaching for the pickers. */
function useDiffActions(versions: GraphVersion[], pair: VersionPair | null, show: (pair: VersionPair) => void) {
  // `show` changes with every URL change; reading it through a ref keeps the actions (and kbar) stable.
  const showRef = useRef(show)
  useLayoutEffect(() => {
    showRef.current = show
  })
  const from = pair?.from ?? null
  const to = pair?.to ?? null
  const actions = useMemo<Action[]>(() => {
    if (from === null || to === null) return []
    const go = (next: VersionPair) => () => showRef.current(next)
    const target = versions.find((v) => v.graph_version === to)
    const latest = versions[0]
    const list: Action[] = [{ id: 'diff-swap', name: 'Swap diff versions', section: 'Diff', perform: go({ from: to, to: from }) }]
    if (target)
      list.push({
        id: 'diff-previous',
        name: 'Diff against previous version',
        subtitle: `v${target.previous_version} → v${target.graph_version}`,
        section: 'Diff',
        perform: go({ from: target.previous_version, to: target.graph_version }),
      })
    if (latest && latest !== target)
      list.push({
        id: 'diff-latest',
        name: 'Diff the latest version against its previous',
        subtitle: `v${latest.previous_version} → v${latest.graph_version}`,
        section: 'Diff',
        perform: go({ from: latest.previous_version, to: latest.graph_version }),
      })
    return list
  }, [versions, from, to])
  useRegisterActions(actions, [actions])
}

function versionLabel(v: GraphVersion): string {
  return `v${v.graph_version} · ${when(v.created_at)} · ${v.nodes} nodes`
}

function VersionPickers({
  versions,
  pair,
  onChange,
}: {
  versions: GraphVersion[]
  pair: VersionPair
  onChange: (pair: VersionPair) => void
}) {
  return (
    <div className="row">
      <label className="row">
        <span className="muted">From</span>
        <select
          data-testid="version-from"
          value={pair.from}
          onChange={(e) => onChange({ ...pair, from: Number(e.target.value) })}
        >
          {versions.map((v) => (
            <option key={v.graph_version} value={v.graph_version}>
              {versionLabel(v)}
            </option>
          ))}
          {/* version 0 is "before the first ingestion": against it, every node reads as added */}
          <option value={0}>v0 · empty graph</option>
        </select>
      </label>
      <span aria-hidden="true">→</span>
      <label className="row">
        <span className="muted">To</span>
        <select data-testid="version-to" value={pair.to} onChange={(e) => onChange({ ...pair, to: Number(e.target.value) })}>
          {versions.map((v) => (
            <option key={v.graph_version} value={v.graph_version}>
              {versionLabel(v)}
            </option>
          ))}
        </select>
      </label>
      <button type="button" onClick={() => onChange({ from: pair.to, to: pair.from })} title="Swap from and to">
        ⇄
      </button>
    </div>
  )
}

function DiffBody({
  tenant,
  project,
  pair,
  selected,
  onSelect,
}: {
  tenant: string
  project: string
  pair: VersionPair
  selected: string | null
  onSelect: (uniqueId: string) => void
}) {
  // The diff reads forward only: the API compares what `to` holds against `from`, not the other way round.
  const forward = pair.from < pair.to
  const diff = useDiff(tenant, project, forward ? pair.from : null, forward ? pair.to : null)
  const [filter, setFilter] = useState('')

  if (pair.from === pair.to) return <Empty>Both sides are v{pair.to}: pick two different versions.</Empty>
  if (!forward)
    return (
      <Empty>
        A diff reads from an older version to a newer one (v{pair.from} is newer than v{pair.to}): swap them with ⇄.
      </Empty>
    )
  if (diff.isPending) return <Loading what="Comparing versions" />
  if (diff.isError) return <ErrorBox error={diff.error} title="Could not compare the versions" />

  const entry = findEntry(diff.data, selected)
  return (
    <>
      <DiffSummary diff={diff.data} />
      <div className="diff-layout">
        <div className="diff-lists">
          <input
            type="search"
            className="diff-filter"
            placeholder="Filter by id, type or aspect…"
            aria-label="Filter the changes"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
          <DiffLists diff={diff.data} filter={filter} selected={entry} onSelect={onSelect} />
        </div>
        <div className="diff-code" data-testid="diff-editor">
          {entry ? (
            <NodeCodeDiff key={entry.node_uuid} tenant={tenant} project={project} entry={entry} pair={pair} />
          ) : (
            <Empty>Select a node to see its SQL at v{pair.from} and v{pair.to}.</Empty>
          )}
        </div>
      </div>
    </>
  )
}

export function DiffSummary({ diff }: { diff: VersionDiff }) {
  // dbt's state:modified picks new nodes too: count every entry the API flags (removed ones never are)
  const modified = DIFF_KINDS.flatMap((kind) => diff[kind]).filter((e) => e.modified).length
  return (
    <div className="diff-summary" data-testid="diff-summary">
      <span>
        v{diff.from_version} → v{diff.to_version}:
      </span>
      {totalChanges(diff) === 0 ? (
        <span className="muted">no node changed</span>
      ) : (
        DIFF_KINDS.map((kind) => (
          <span key={kind} className={`diff-count ${kind}${diff[kind].length === 0 ? ' zero' : ''}`}>
            <strong>{diff[kind].length}</strong> {kind}
          </span>
        ))
      )}
      {modified > 0 && (
        <span className="muted" title="Nodes that dbt's state:modified selector would pick">
          · {modified} state:modified
        </span>
      )}
    </div>
  )
}

export function DiffLists({
  diff,
  filter,
  selected,
  onSelect,
}: {
  diff: VersionDiff
  filter: string
  selected: NodeDiff | null
  onSelect: (uniqueId: string) => void
}) {
  const lists = useMemo(() => filterDiff(diff, filter), [diff, filter])
  const shown = DIFF_KINDS.filter((kind) => diff[kind].length > 0)
  if (shown.length === 0) return <Empty>Nothing changed between these versions.</Empty>
  return (
    <>
      {shown.map((kind) => (
        <DiffSection
          key={kind}
          kind={kind}
          entries={lists[kind]}
          total={diff[kind].length}
          selected={selected}
          onSelect={onSelect}
        />
      ))}
    </>
  )
}

function DiffSection({
  kind,
  entries,
  total,
  selected,
  onSelect,
}: {
  kind: DiffKind
  entries: NodeDiff[]
  total: number
  selected: NodeDiff | null
  onSelect: (uniqueId: string) => void
}) {
  return (
    <section className="diff-section" data-testid={`diff-${kind}`}>
      <h2>
        {KIND_TITLES[kind]}{' '}
        <span className="muted">{entries.length === total ? total : `${entries.length} of ${total}`}</span>
      </h2>
      {entries.length === 0 ? (
        <p className="muted">No match.</p>
      ) : (
        <ul>
          {entries.slice(0, SECTION_LIMIT).map((entry) => (
            <li key={entry.node_uuid}>
              <DiffEntry entry={entry} active={entry === selected} onSelect={onSelect} />
            </li>
          ))}
        </ul>
      )}
      {entries.length > SECTION_LIMIT && (
        <p className="muted">…and {entries.length - SECTION_LIMIT} more: narrow them with the filter.</p>
      )}
    </section>
  )
}

function DiffEntry({ entry, active, onSelect }: { entry: NodeDiff; active: boolean; onSelect: (uniqueId: string) => void }) {
  return (
    <button
      type="button"
      className={`diff-entry${active ? ' active' : ''}`}
      aria-pressed={active}
      onClick={() => onSelect(entry.unique_id)}
    >
      <span className="diff-entry-head">
        <span className={`badge kind-badge kind-${entry.resource_type}`}>{entry.resource_type}</span>
        {entry.kind === 'renamed' ? (
          <span className="mono diff-id">
            <span className="old-id">
              <Breakable text={entry.old_unique_id ?? ''} />
            </span>{' '}
            → <Breakable text={entry.unique_id} />
          </span>
        ) : (
          <span className="mono diff-id">
            <Breakable text={entry.unique_id} />
          </span>
        )}
      </span>
      {(entry.aspects?.length || entry.modified) && (
        <span className="chips">
          {entry.aspects?.map((aspect) => (
            <span key={aspect} className="chip">
              {aspect}
            </span>
          ))}
          {entry.modified && (
            <span className="chip modified" title="dbt's state:modified selector picks this node">
              state:modified
            </span>
          )}
        </span>
      )}
    </button>
  )
}

type CodeKind = 'raw' | 'compiled'

function NodeCodeDiff({
  tenant,
  project,
  entry,
  pair,
}: {
  tenant: string
  project: string
  entry: NodeDiff
  pair: VersionPair
}) {
  const { fromId, toId } = codeSides(entry)
  // version 0 has no nodes (and useNode would read "no version" as the latest)
  const before = useNode(tenant, project, pair.from > 0 ? fromId : null, pair.from)
  const after = useNode(tenant, project, toId, pair.to)
  const [codeKind, setCodeKind] = useState<CodeKind>('raw')

  const pending = (fromId !== null && pair.from > 0 && before.isPending) || (toId !== null && after.isPending)
  const error = before.error ?? after.error
  const code = (detail: typeof before.data) =>
    (codeKind === 'raw' ? detail?.raw_code : detail?.compiled_code) ?? ''
  const original = code(before.data)
  const modified = code(after.data)

  return (
    <div className="diff-code-panel">
      <div className="diff-code-head">
        <h2 className="mono">
          {fromId ? (
            <Link to={paths.docs(project, fromId)}>{nodeLabel(fromId)}</Link>
          ) : (
            <span className="muted">(absent)</span>
          )}{' '}
          <span className="muted">v{pair.from}</span> →{' '}
          {toId ? <Link to={paths.docs(project, toId)}>{nodeLabel(toId)}</Link> : <span className="muted">(absent)</span>}{' '}
          <span className="muted">v{pair.to}</span>
        </h2>
        <div className="tabs" role="tablist" aria-label="Code">
          {(['raw', 'compiled'] as const).map((kind) => (
            <button
              key={kind}
              type="button"
              role="tab"
              aria-selected={codeKind === kind}
              className={codeKind === kind ? 'active' : ''}
              onClick={() => setCodeKind(kind)}
            >
              {kind === 'raw' ? 'Raw SQL' : 'Compiled SQL'}
            </button>
          ))}
        </div>
      </div>
      {(entry.kind === 'changed' || entry.kind === 'renamed') && !entry.aspects?.includes('body') && (
        <p className="muted">
          The code did not change{entry.aspects?.length ? `; what did: ${entry.aspects.join(', ')}` : ''}.
        </p>
      )}
      {pending ? (
        <Loading what="Loading the code" />
      ) : error ? (
        <ErrorBox error={error} title="Could not load the node" />
      ) : codeKind === 'compiled' && !original && !modified ? (
        <Empty>
          No compiled SQL at either version: a manifest has it when it comes from dbt compile, run or build.
        </Empty>
      ) : (
        <div className="diff-editor-box monaco-box">
          <SqlDiff original={original} modified={modified} height="100%" />
        </div>
      )}
    </div>
  )
}
