// The graph drawn with React Flow: items laid out by the layout service (cached, in a worker, cancelable),
// nodes placed by hand kept where they were put, collapsed groups as single boxes. Reports what the user does
// (select, choose several, move, pan/zoom, expand a group); it never changes the graph.
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  useNodesState,
  useReactFlow,
  useStoreApi,
  type Edge,
  type Node,
  type OnNodeDrag,
  type Viewport,
} from '@xyflow/react'
import '@xyflow/react/dist/style.css'
import { memo, useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { bus } from '@/lib/bus'
import { seconds } from '@/lib/format'
import { cancelLayout, layout, LayoutCanceled, type LayoutResult } from './layout'
import type { VisibleGraph } from './model'
import { GROUP_HEIGHT, GROUP_WIDTH, NODE_HEIGHT, NODE_TYPES, NODE_WIDTH, statusClass, type DbtNodeData, type GroupNodeData } from './nodes'
import {
  bounds,
  boxAt,
  contains,
  drawOverview,
  grown,
  KIND_COLOURS,
  overlaps,
  STATUS_COLOURS,
  visibleRegion,
  type Box,
  type Rect,
  type Transform,
} from './overview'

export type Move = { node_uuid: string; x: number; y: number }
export type PlanMarks = ReadonlyMap<string, 'RUN' | 'SKIP' | 'PARTIAL'>

type Props = {
  tenant: string
  project: string
  graphVersion: number
  graph: VisibleGraph
  statuses: Readonly<Record<string, string>>
  plan?: PlanMarks
  manual?: Readonly<Record<string, readonly [number, number]>>
  viewport?: Viewport | null
  onSelect?: (id: string | null) => void
  onChoose?: (ids: string[]) => void
  onMove?: (moves: Move[]) => void
  onViewport?: (viewport: Viewport) => void
  onExpand?: (groupKey: string) => void
}

type LayoutState =
  | { phase: 'idle' }
  | { phase: 'working'; nodes: number; since: number }
  | { phase: 'ready'; result: LayoutResult }
  | { phase: 'canceled' | 'failed'; message: string }

// Sizes given up front: React Flow shows a node only once it knows its size, and a node object replaced by a
// redraw would otherwise wait for a resize observation that never comes when its box did not change size (it
// stayed invisible). It also spares measuring thousands of nodes on a first paint.
const NODE_SIZE = { width: NODE_WIDTH, height: NODE_HEIGHT }
const GROUP_SIZE = { width: GROUP_WIDTH, height: GROUP_HEIGHT }

/** Above this many drawn items the drawing is split between a canvas and React Flow (see overview.ts): far out, the
 * canvas paints everything (an overview); close in, React Flow draws only the nodes in and around the view, over
 * edges the canvas paints. React Flow alone drew 1,000 nodes panning at 17 frames a second. The minimap and node
 * focus rings are left out too: they cost more than they help. */
const LARGE = 800
/** Zoom at which a large drawing switches from the overview to React Flow's nodes (and back, a little lower). */
const DETAIL_ZOOM = 0.35
const OVERVIEW_ZOOM = 0.3
const NO_NODES: Node[] = []
const NO_EDGES: Edge[] = []

declare global {
  interface Window {
    /** What the end-to-end tests and the benchmark read: when the graph was last drawn, and how. */
    __lockgateGraph?: { items: number; edges: number; layoutMs: number; source: string; paintedAt: number }
  }
}

function Canvas(props: Props) {
  const { graph, statuses, plan, manual, onExpand } = props
  const [state, setState] = useState<LayoutState>({ phase: 'idle' })
  const [nodes, setNodes, onNodesChange] = useNodesState<Node>([])
  const flow = useReactFlow()
  const fitted = useRef<string | null>(null)
  const first = useRef(true)
  const handlers = useRef(props)
  handlers.current = props
  const [retry, setRetry] = useState(0)
  const large = graph.items.length > LARGE
  const [detailed, setDetailed] = useState(!large)
  const detailedRef = useRef(!large)
  const store = useStoreApi()
  const overview = useRef<HTMLCanvasElement | null>(null)
  const overviewBoxes = useRef<Box[]>([])
  const selectedRef = useRef<string | null>(null)
  /** Close in on a large drawing: the region whose nodes React Flow draws (the view and a margin around it). */
  const [region, setRegion] = useState<Rect | null>(null)
  const regionRef = useRef<Rect | null>(null)

  const boxes = useMemo(
    () =>
      graph.items.map((item) =>
        item.kind === 'node'
          ? { id: item.id, width: NODE_WIDTH, height: NODE_HEIGHT }
          : { id: item.id, width: GROUP_WIDTH, height: GROUP_HEIGHT },
      ),
    [graph],
  )
  const links = useMemo(() => graph.edges.map((e) => ({ source: e.source, target: e.target })), [graph])
  const drawing = useMemo(() => graph.items.map((i) => i.id).join('\n'), [graph])
  const lines = useMemo(() => graph.edges.map((e) => ({ from: e.source, to: e.target })), [graph])

  useEffect(() => {
    let live = true
    setState({ phase: 'working', nodes: boxes.length, since: performance.now() })
    performance.mark('lg:layout-start')
    layout({ tenant: props.tenant, project: props.project, graphVersion: props.graphVersion, boxes, links })
      .then((result) => {
        performance.mark('lg:layout-done')
        if (live) setState({ phase: 'ready', result })
      })
      .catch((error: unknown) => {
        if (!live) return
        setState(
          error instanceof LayoutCanceled
            ? { phase: 'canceled', message: 'Layout canceled.' }
            : { phase: 'failed', message: `The layout failed: ${String(error)}` },
        )
      })
    return () => {
      live = false
    }
  }, [props.tenant, props.project, props.graphVersion, boxes, links, retry])

  // Build the React Flow nodes once positions are known; hand-placed nodes keep their place.
  useEffect(() => {
    if (state.phase !== 'ready') return
    const positions = state.result.positions
    const next: Node[] = graph.items.map((item) => {
      const [lx, ly] = positions.get(item.id) ?? [0, 0]
      if (item.kind === 'node') {
        const placed = manual?.[item.node.node_uuid]
        const data: DbtNodeData = {
          node: item.node,
          status: statuses[item.id] ?? null,
          plan: plan?.get(item.id) ?? null,
          group: item.group,
        }
        return { id: item.id, type: 'dbt', position: { x: placed?.[0] ?? lx, y: placed?.[1] ?? ly }, data, ...NODE_SIZE }
      }
      const data: GroupNodeData = { label: item.label, count: item.members.length, groupKey: item.id, onExpand: (k) => onExpand?.(k) }
      return { id: item.id, type: 'cluster', position: { x: lx, y: ly }, data, draggable: false, ...GROUP_SIZE }
    })
    performance.mark('lg:nodes-built')
    overviewBoxes.current = next.map((n) => ({
      id: n.id,
      x: n.position.x,
      y: n.position.y,
      width: n.width ?? NODE_WIDTH,
      height: n.height ?? NODE_HEIGHT,
      colour: n.type === 'dbt' ? (KIND_COLOURS[(n.data as DbtNodeData).node.resource_type] ?? '#6e7781') : KIND_COLOURS.group!,
      dot: n.type === 'dbt' ? (STATUS_COLOURS[statusClass((n.data as DbtNodeData).status)] ?? null) : null,
    }))
    setNodes(next)
  }, [state, graph, statuses, plan, manual, onExpand, setNodes])

  // A node dragged close in moves its box too, so the edges the canvas paints follow it.
  useEffect(() => {
    if (!large || nodes.length === 0) return
    const at = new Map(nodes.map((n) => [n.id, n.position]))
    overviewBoxes.current = overviewBoxes.current.map((b) => {
      const p = at.get(b.id)
      return p && (p.x !== b.x || p.y !== b.y) ? { ...b, x: p.x, y: p.y } : b
    })
  }, [large, nodes])

  const shown = useMemo(
    () =>
      !large
        ? nodes
        : detailed && region
          ? nodes.filter((n) => overlaps(region, n.position.x, n.position.y, n.width ?? NODE_WIDTH, n.height ?? NODE_HEIGHT))
          : NO_NODES,
    [large, detailed, region, nodes],
  )

  const edges: Edge[] = useMemo(
    () =>
      graph.edges.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        ...(e.count > 1 ? { label: String(e.count), className: 'bundle' } : {}),
      })),
    [graph],
  )

  // A new drawing (other items: a filter, a focus, a collapse): the whole of it in view; the very first drawing opens
  // where the user left the canvas (its saved viewport), if they saved one.
  useEffect(() => {
    if (state.phase !== 'ready' || nodes.length === 0 || fitted.current === drawing) return
    fitted.current = drawing
    const saved = first.current ? props.viewport : null
    first.current = false
    if (saved) void flow.setViewport(saved)
    else void flow.fitBounds(bounds(overviewBoxes.current), { padding: 0.05 }).then(() => {
      if (flow.getZoom() > 1.2) void flow.zoomTo(1.2)
    })
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        performance.mark('lg:graph-painted')
        window.__lockgateGraph = {
          items: nodes.length,
          edges: edges.length,
          layoutMs: state.result.ms,
          source: state.result.source,
          paintedAt: performance.now(),
        }
      }),
    )
  }, [state, nodes, edges, flow, drawing, props.viewport])

  useEffect(() => {
    const focus = ({ uniqueId }: { uniqueId: string }) => {
      const box = overviewBoxes.current.find((b) => b.id === uniqueId)
      if (!box) return
      // from far out, jump: an animated zoom would draw the thousands of nodes it passes close to
      const duration = detailedRef.current ? 300 : 0
      void flow.setCenter(box.x + box.width / 2, box.y + box.height / 2, { zoom: 1.1, duration })
      selectedRef.current = uniqueId
      handlers.current.onSelect?.(uniqueId)
    }
    const fit = () => void flow.fitBounds(bounds(overviewBoxes.current), { padding: 0.05, duration: 300 })
    bus.on('graph:focus', focus)
    bus.on('graph:fit', fit)
    return () => {
      bus.off('graph:focus', focus)
      bus.off('graph:fit', fit)
    }
  }, [flow])

  // The overview follows the viewport by itself (no React render per frame), and says when to switch to details.
  useEffect(() => {
    if (!large || state.phase !== 'ready') return
    let frame = 0
    const paint = () => {
      frame = 0
      const canvas = overview.current
      const context = canvas?.getContext('2d')
      if (!canvas || !context) return
      const ratio = window.devicePixelRatio || 1
      const { clientWidth: width, clientHeight: height } = canvas
      if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
        canvas.width = width * ratio
        canvas.height = height * ratio
      }
      const transform: Transform = store.getState().transform
      const boxesToo = !detailedRef.current
      drawOverview(context, { width, height, ratio }, transform, overviewBoxes.current, lines, selectedRef.current, boxesToo)
    }
    const follow = () => {
      if (fitted.current !== drawing) return // not placed yet: the zoom of an unfitted view says nothing
      const zoom = store.getState().transform[2]
      const want = detailedRef.current ? zoom >= OVERVIEW_ZOOM : zoom >= DETAIL_ZOOM
      if (want !== detailedRef.current) {
        detailedRef.current = want
        setDetailed(want)
      }
      if (want) {
        const canvas = overview.current
        const now = visibleRegion(store.getState().transform, canvas?.clientWidth ?? 0, canvas?.clientHeight ?? 0)
        if (!regionRef.current || !contains(regionRef.current, now)) {
          regionRef.current = grown(now, 0.5)
          setRegion(regionRef.current)
        }
      }
      if (frame === 0) frame = requestAnimationFrame(paint)
    }
    follow()
    const stop = store.subscribe(follow)
    return () => {
      stop()
      if (frame) cancelAnimationFrame(frame)
    }
  }, [large, state, lines, store, drawing, nodes])

  const onPaneClick = useCallback(
    (event: React.MouseEvent) => {
      if (detailedRef.current) {
        handlers.current.onSelect?.(null)
        return
      }
      const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY })
      const box = boxAt(overviewBoxes.current, at.x, at.y)
      if (box && !box.id.includes(':')) {
        selectedRef.current = box.id
        handlers.current.onSelect?.(box.id)
      } else if (box) {
        void flow.setCenter(box.x + box.width / 2, box.y + box.height / 2, { zoom: DETAIL_ZOOM + 0.1, duration: 300 })
      } else {
        handlers.current.onSelect?.(null)
      }
    },
    [flow],
  )

  const onDragStop: OnNodeDrag = useCallback(
    (_event, _node, dragged) => {
      const moves = dragged
        .filter((n) => n.type === 'dbt')
        .map((n) => ({ node_uuid: (n.data as DbtNodeData).node.node_uuid, x: Math.round(n.position.x), y: Math.round(n.position.y) }))
      if (moves.length > 0) handlers.current.onMove?.(moves)
    },
    [],
  )

  return (
    <div
      className={`graph-canvas${large ? ' large' : ''}`}
      data-testid="graph-canvas"
      data-phase={state.phase}
      data-detail={detailed ? 'nodes' : 'overview'}
    >
      <ReactFlow
        nodes={shown}
        edges={large ? NO_EDGES : edges}
        nodeTypes={NODE_TYPES}
        onNodesChange={onNodesChange}
        onNodeClick={(_e, node) => props.onSelect?.(node.id)}
        onPaneClick={onPaneClick}
        onSelectionChange={({ nodes: chosen }) => props.onChoose?.(chosen.filter((n) => n.type === 'dbt').map((n) => n.id))}
        onNodeDragStop={onDragStop}
        // only the user's own panning and zooming is worth keeping, not the view fitting itself to a new drawing
        onMoveEnd={(event, viewport) => event && props.onViewport?.(viewport)}
        nodesConnectable={false}
        nodesFocusable={!large}
        edgesFocusable={false}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={['Meta', 'Control']}
        onlyRenderVisibleElements
        minZoom={0.002}
        maxZoom={2}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={24} />
        {large && <canvas ref={overview} className="overview" data-testid="graph-overview" />}
        <Controls showInteractive={false} />
        {!large && <MiniMap pannable zoomable nodeStrokeWidth={2} />}
      </ReactFlow>
      {state.phase === 'working' && <Working key={state.since} nodes={state.nodes} since={state.since} />}
      {(state.phase === 'canceled' || state.phase === 'failed') && (
        <div className="overlay" role="status">
          <p>{state.message}</p>
          <p className="muted">Collapse groups or filter the graph to draw fewer nodes, or try again.</p>
          <button type="button" onClick={() => setRetry((n) => n + 1)}>
            Lay out again
          </button>
        </div>
      )}
    </div>
  )
}

function Working({ nodes, since }: { nodes: number; since: number }) {
  const [now, setNow] = useState(performance.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(performance.now()), 250)
    return () => clearInterval(timer)
  }, [])
  const elapsed = Math.max(0, now - since) / 1000
  // measured on this kind of machine: ELK (as tuned, ADR 0014) takes about 3 ms per node in a page; an estimate
  const expected = Math.max(1, (nodes * 3) / 1000)
  return (
    <div className="overlay" role="status" data-testid="layout-progress">
      <p>
        Laying out {nodes.toLocaleString()} nodes… {seconds(elapsed)}
      </p>
      <progress max={1} value={Math.min(elapsed / expected, 0.95)} />
      <button type="button" onClick={cancelLayout}>
        Cancel
      </button>
    </div>
  )
}

/** Memoised: a large drawing is costly to re-render, so a parent's unrelated change (a side panel opening, a
 * toolbar typing) must not reach it. Its callbacks must be stable (useCallback, store actions). */
export const GraphCanvas = memo(function GraphCanvas(props: Props) {
  return (
    <ReactFlowProvider>
      <Canvas {...props} />
    </ReactFlowProvider>
  )
})
