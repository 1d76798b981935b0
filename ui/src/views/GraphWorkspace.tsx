// The graph workspace: the project's LogicalGraph drawn with React Flow. Filters (types, a dbt selection through
// the API, a focus neighbourhood) and the search are view settings kept in the URL; everything the user arranges
// (moved nodes, groups, grouping, collapsed groups, viewport) is a canvas command recorded per user or in the
// shared workspace, so a reload restores it exactly. The graph itself is never changed from here.
import { useQuery } from '@tanstack/react-query'
import type { Viewport } from '@xyflow/react'
import { useRegisterActions } from 'kbar'
import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { useParams, useSearchParams } from 'react-router'
import { api, unwrap, type CanvasCommand, type Grouping } from '@/api/client'
import { useCanvas, useOutline, useStatuses } from '@/api/hooks'
import { useMeContext, useTenant } from '@/app/tenant'
import { Empty, ErrorBox, Loading } from '@/components/common'
import { useCanvasEditor, type Workspace } from '@/graph/canvasEditor'
import { GraphCanvas, type Move } from '@/graph/GraphCanvas'
import { GroupNameForm, GroupsPanel } from '@/graph/GroupsPanel'
import { buildGraph, derivedGroup, neighbourhood, search, type UserGroup } from '@/graph/model'
import { NodePanel } from '@/graph/NodePanel'
import { useWorkspace } from '@/graph/workspaceStore'
import { bus } from '@/lib/bus'

/** Above this many drawn nodes, a canvas nobody arranged yet opens grouped by folder with every folder collapsed. */
export const LARGE_GRAPH = 1500
const NO_STATUSES: Readonly<Record<string, string>> = {}
const TYPES = ['model', 'source', 'seed', 'snapshot', 'exposure', 'analysis', 'test', 'unit_test', 'metric', 'semantic_model']

function useSelection(tenant: string, project: string, expression: string) {
  return useQuery({
    queryKey: ['select', tenant, project, expression],
    enabled: expression !== '',
    retry: false,
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/select', {
          params: { path: { tenant_id: tenant, project_id: project }, query: { select: expression } },
        }),
      ),
  })
}

export default function GraphWorkspace() {
  const tenant = useTenant()
  const me = useMeContext()
  const { project = '' } = useParams()
  const [params, setParams] = useSearchParams()
  const workspace: Workspace = params.get('ws') === 'shared' ? 'shared' : 'mine'
  const focus = params.get('focus')
  const up = Number(params.get('up') ?? 2)
  const down = Number(params.get('down') ?? 2)
  const selector = params.get('select') ?? ''
  const canEdit = workspace === 'mine' || me.can_write

  const outline = useOutline(tenant, project)
  const statuses = useStatuses(tenant, project)
  const canvas = useCanvas(tenant, project, workspace)
  const selection = useSelection(tenant, project, selector)
  const send = useCanvasEditor(tenant, project, workspace)
  const { hiddenTypes, toggleType, selected, select, chosen, choose } = useWorkspace()
  const [grouping, setGrouping] = useState(false)
  const [query, setQuery] = useState('')

  const setParam = useCallback(
    (changes: Record<string, string | null>) =>
      setParams((p) => {
        for (const [k, v] of Object.entries(changes)) if (v === null || v === '') p.delete(k); else p.set(k, v)
        return p
      }),
    [setParams],
  )

  const nodes = outline.data?.nodes
  const only = useMemo(() => {
    if (!outline.data) return null
    if (focus) return neighbourhood(outline.data.nodes, outline.data.edges, focus, up, down)
    if (selector && selection.data) return new Set(selection.data.unique_ids)
    return null
  }, [outline.data, focus, up, down, selector, selection.data])

  // The canvas object is replaced after every edit (a viewport change too): the drawing depends only on its groups
  // and collapsed groups, so those are compared by content, and an unrelated edit redraws nothing.
  const groupsText = JSON.stringify(canvas.data?.groups ?? [])
  const userGroups: UserGroup[] = useMemo(() => JSON.parse(groupsText) as UserGroup[], [groupsText])
  const collapsedText = JSON.stringify(canvas.data?.collapsed ?? [])
  const visibleCount = useMemo(
    () => (nodes ? nodes.filter((n) => !hiddenTypes.has(n.resource_type) && (only === null || only.has(n.unique_id))).length : 0),
    [nodes, hiddenTypes, only],
  )
  // A large graph nobody has arranged yet opens as folders, all collapsed: a drawing of thousands of nodes helps
  // nobody at first sight, and laying it out takes long the first time. The default is not recorded until the
  // user changes something (then it is, before their change).
  const chosenGrouping = canvas.data?.grouping ?? null
  const defaulted = chosenGrouping === null && only === null && visibleCount > LARGE_GRAPH
  const effectiveGrouping: Grouping = defaulted ? 'folder' : (chosenGrouping ?? 'none')
  const folderKeys = useMemo(
    () =>
      defaulted && nodes
        ? [...new Set(nodes.filter((n) => !hiddenTypes.has(n.resource_type)).map((n) => derivedGroup(n, 'folder')!))]
        : [],
    [defaulted, nodes, hiddenTypes],
  )
  const collapsed = useMemo(
    () => new Set(defaulted ? folderKeys : (JSON.parse(collapsedText) as string[])),
    [defaulted, folderKeys, collapsedText],
  )
  const edit = useCallback(
    async (command: CanvasCommand) => {
      if (defaulted) {
        await send({ type: 'set_grouping', grouping: 'folder' })
        await send({ type: 'set_collapsed', keys: folderKeys, collapsed: true })
      }
      await send(command)
    },
    [defaulted, folderKeys, send],
  )

  const graph = useMemo(
    () =>
      outline.data
        ? buildGraph({
            nodes: outline.data.nodes,
            edges: outline.data.edges,
            hiddenTypes,
            only,
            grouping: effectiveGrouping,
            userGroups,
            collapsed,
          })
        : null,
    [outline.data, hiddenTypes, only, effectiveGrouping, userGroups, collapsed],
  )

  const manual = canvas.data?.positions
  // The drawing opens where the user left it; later viewport saves must not re-render the (memoised) canvas.
  const opened = useRef<{ key: string; viewport: Viewport | null } | null>(null)
  const openedKey = `${project}/${workspace}`
  if (canvas.data && opened.current?.key !== openedKey) opened.current = { key: openedKey, viewport: canvas.data.viewport ?? null }
  const onMove = useCallback((moves: Move[]) => void edit({ type: 'move_nodes', positions: moves }), [edit])
  const lastViewport = useRef<string>('')
  const viewportTimer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const onViewport = useCallback(
    (v: Viewport) => {
      if (!canEdit) return
      const viewport = { x: v.x, y: v.y, zoom: v.zoom } // exactly as left: a reload restores it to the pixel
      const text = JSON.stringify(viewport)
      if (text === lastViewport.current) return
      if (viewportTimer.current) clearTimeout(viewportTimer.current)
      viewportTimer.current = setTimeout(() => {
        lastViewport.current = text
        void send({ type: 'set_viewport', viewport })
      }, 800)
    },
    [send, canEdit],
  )
  useEffect(() => () => void (viewportTimer.current && clearTimeout(viewportTimer.current)), [])
  const onExpand = useCallback((key: string) => void edit({ type: 'set_collapsed', keys: [key], collapsed: false }), [edit])

  const matches = useMemo(() => (nodes && query.trim().length >= 2 ? [...search(nodes, query)].slice(0, 12) : []), [nodes, query])
  const goTo = (uniqueId: string) => {
    setQuery('')
    select(uniqueId)
    const drawn = graph?.items.some((i) => i.id === uniqueId)
    if (drawn) bus.emit('graph:focus', { uniqueId })
    else setParam({ focus: uniqueId, select: null })
  }

  useRegisterActions(
    [
      { id: 'graph-fit', name: 'Fit the graph in view', section: 'Graph', perform: () => bus.emit('graph:fit') },
      { id: 'graph-clear', name: 'Show the whole graph (clear focus and selection)', section: 'Graph', perform: () => setParam({ focus: null, select: null }) },
      ...(['none', 'folder', 'package', 'tag', 'type'] as const).map((g) => ({
        id: `graph-group-${g}`,
        name: g === 'none' ? 'Do not group' : `Group by ${g}`,
        section: 'Graph',
        perform: () => void edit({ type: 'set_grouping', grouping: g }),
      })),
    ],
    [setParam, edit],
  )

  if (outline.isPending || canvas.isPending) return <Loading what="Loading the graph" />
  if (outline.isError)
    return (
      <div className="page">
        <ErrorBox error={outline.error} title="No graph to show" />
        <p>Ingest the project's dbt artifacts from the Artifacts view first.</p>
      </div>
    )
  if (canvas.isError) return <ErrorBox error={canvas.error} title="The canvas could not be read" />
  if (!graph) return null
  const statusMap = statuses.data?.statuses ?? NO_STATUSES

  return (
    <div className="graph-page">
      <div className="graph-main">
        <div className="toolbar" data-testid="graph-toolbar">
          <div className="search-box">
            <input
              type="search"
              placeholder="Find a node…"
              aria-label="Find a node"
              value={query}
              onChange={(e) => setQuery(e.target.value)}
              onKeyDown={(e) => e.key === 'Enter' && matches[0] && goTo(matches[0])}
              data-testid="graph-search"
            />
            {matches.length > 0 && (
              <ul className="search-results plain" role="listbox">
                {matches.map((id) => (
                  <li key={id}>
                    <button type="button" className="link" onClick={() => goTo(id)}>
                      {id}
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </div>
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault()
              const value = new FormData(e.currentTarget).get('select')
              setParam({ select: typeof value === 'string' ? value.trim() : null, focus: null })
            }}
          >
            <input name="select" defaultValue={selector} key={selector} placeholder="dbt selector, e.g. +orders tag:pii" aria-label="dbt selector" className="mono" data-testid="graph-selector" />
            <button type="submit">Select</button>
          </form>
          {(focus || selector) && (
            <button type="button" onClick={() => setParam({ focus: null, select: null })} data-testid="graph-clear">
              Show all
            </button>
          )}
          {focus && (
            <span className="row small">
              focus <code>{focus.split('.').slice(2).join('.')}</code>
              <label>
                up <input type="number" min={0} max={20} value={up} onChange={(e) => setParam({ up: e.target.value })} style={{ width: 52 }} />
              </label>
              <label>
                down <input type="number" min={0} max={20} value={down} onChange={(e) => setParam({ down: e.target.value })} style={{ width: 52 }} />
              </label>
            </span>
          )}
          <span className="sep" />
          <label className="row small">
            Group by
            <select
              value={effectiveGrouping}
              disabled={!canEdit}
              onChange={(e) => void edit({ type: 'set_grouping', grouping: e.target.value as Grouping })}
              data-testid="graph-grouping"
            >
              {['none', 'folder', 'package', 'tag', 'type'].map((g) => (
                <option key={g} value={g}>
                  {g}
                </option>
              ))}
            </select>
          </label>
          <label className="row small">
            Canvas
            <select value={workspace} onChange={(e) => setParam({ ws: e.target.value === 'shared' ? 'shared' : null })} data-testid="graph-workspace">
              <option value="mine">mine</option>
              <option value="shared">shared</option>
            </select>
          </label>
          {chosen.length > 0 && canEdit && !grouping && (
            <button type="button" onClick={() => setGrouping(true)} data-testid="group-selection">
              Group {chosen.length} selected
            </button>
          )}
          {grouping && (
            <GroupNameForm
              submitLabel="Create group"
              onCancel={() => setGrouping(false)}
              onSubmit={(name) => {
                const members = chosen.map((id) => nodes?.find((n) => n.unique_id === id)?.node_uuid).filter((u): u is string => !!u)
                void edit({ type: 'create_group', group_id: crypto.randomUUID(), name, members })
                setGrouping(false)
                choose([])
              }}
            />
          )}
          {canEdit && Object.keys(manual ?? {}).length > 0 && (
            <button type="button" onClick={() => void edit({ type: 'reset_positions', node_uuids: [] })} title="Give every hand-placed node back to the automatic layout">
              Reset positions
            </button>
          )}
          <span className="muted small" data-testid="graph-counts">
            {graph.items.length.toLocaleString()} drawn · {visibleCount.toLocaleString()} of {outline.data.nodes.length.toLocaleString()} nodes · v{outline.data.graph_version}
          </span>
        </div>
        <div className="toolbar types">
          {TYPES.filter((t) => outline.data.nodes.some((n) => n.resource_type === t)).map((type) => (
            <button key={type} type="button" className={`chip toggle${hiddenTypes.has(type) ? ' off' : ''}`} onClick={() => toggleType(type)} aria-pressed={!hiddenTypes.has(type)}>
              {type}
            </button>
          ))}
          {defaulted && (
            <span className="notice small" data-testid="large-graph-notice">
              {visibleCount.toLocaleString()} nodes: shown as {folderKeys.length} folders. Expand a folder, select or search to draw fewer nodes.
            </span>
          )}
          {selection.isError && <span className="field-error">{String((selection.error as Error).message)}</span>}
        </div>
        {graph.items.length === 0 ? (
          <Empty>Nothing to draw: every node is filtered out.</Empty>
        ) : (
          <GraphCanvas
            key={`${project}-${workspace}`}
            tenant={tenant}
            project={project}
            graphVersion={outline.data.graph_version}
            graph={graph}
            statuses={statusMap}
            manual={manual}
            viewport={opened.current?.viewport ?? null}
            onSelect={select}
            onChoose={choose}
            onMove={canEdit ? onMove : undefined}
            onViewport={onViewport}
            onExpand={canEdit ? onExpand : undefined}
          />
        )}
      </div>
      {selected && graph.items.some((i) => i.id === selected && i.kind === 'node') ? (
        <NodePanel
          tenant={tenant}
          project={project}
          uniqueId={selected}
          statuses={statusMap}
          onClose={() => select(null)}
          onFocus={(id) => setParam({ focus: id, select: null })}
        />
      ) : (
        <aside className="side-panel">
          <GroupsPanel groups={graph.groups} userGroups={userGroups} collapsed={collapsed} send={(c) => void edit(c)} canEdit={canEdit} />
          <p className="muted small">
            Click a node for its details. Shift+drag to select several, then group them. Drag nodes to place them: the
            canvas remembers, the graph never changes.
          </p>
        </aside>
      )}
    </div>
  )
}
