// What the graph workspace draws: the outline of a graph version, filtered (resource types, a search, a dbt
// selection, a focus neighbourhood), grouped (by folder, package, tag or type, plus the user's own groups) and
// with collapsed groups folded into one item each. Pure functions: the same inputs always give the same items,
// in the same order, so a layout computed once can be found again by its key.
import type { Grouping, OutlineNode } from '@/api/client'

export type UserGroup = { group_id: string; name: string; members: string[] }

export type NodeItem = { kind: 'node'; id: string; node: OutlineNode; group: string | null }
export type GroupItem = { kind: 'group'; id: string; label: string; members: string[] }
export type Item = NodeItem | GroupItem
export type VisibleEdge = { id: string; source: string; target: string; count: number }

export type VisibleGraph = {
  items: Item[]
  edges: VisibleEdge[]
  /** Every group a visible node belongs to (collapsed or not): key -> label and visible member ids. */
  groups: Map<string, { label: string; members: string[] }>
  /** Nodes of the outline that the filters hide. */
  hidden: number
}

export type GraphInputs = {
  nodes: OutlineNode[]
  edges: [number, number][]
  hiddenTypes: ReadonlySet<string>
  /** When set, only these unique_ids are drawn (a search, a selection or a focus). */
  only: ReadonlySet<string> | null
  grouping: Grouping
  userGroups: UserGroup[]
  collapsed: ReadonlySet<string>
}

export const DEFAULT_HIDDEN_TYPES: ReadonlySet<string> = new Set(['test', 'unit_test'])

export function folderOf(node: OutlineNode): string {
  const path = (node.path || '').replace(/^(\.\/)+/, '')
  const slash = path.lastIndexOf('/')
  return slash > 0 ? path.slice(0, slash) : path ? '(project root)' : `(${node.resource_type}s)`
}

/** The derived group a node belongs to under a grouping, or null (``none``, or a node without tags). */
export function derivedGroup(node: OutlineNode, grouping: Grouping): string | null {
  switch (grouping) {
    case 'folder':
      return `folder:${folderOf(node)}`
    case 'package':
      return `package:${node.package_name}`
    case 'tag':
      return node.tags && node.tags.length > 0 ? `tag:${node.tags[0]}` : null
    case 'type':
      return `type:${node.resource_type}`
    default:
      return null
  }
}

export function groupLabel(key: string, userGroups: UserGroup[]): string {
  if (key.startsWith('group:')) return userGroups.find((g) => `group:${g.group_id}` === key)?.name ?? key
  return key.slice(key.indexOf(':') + 1)
}

export function buildGraph(input: GraphInputs): VisibleGraph {
  const memberOf = new Map<string, string>() // node_uuid -> user group key
  for (const group of input.userGroups) for (const uuid of group.members) memberOf.set(uuid, `group:${group.group_id}`)

  const visible: boolean[] = input.nodes.map(
    (n) => !input.hiddenTypes.has(n.resource_type) && (input.only === null || input.only.has(n.unique_id)),
  )
  const groups = new Map<string, { label: string; members: string[] }>()
  const itemOf: (string | null)[] = input.nodes.map(() => null) // outline index -> drawn item id
  const items: Item[] = []
  const groupItems = new Map<string, GroupItem>()
  let hidden = 0
  input.nodes.forEach((node, i) => {
    if (!visible[i]) {
      hidden += 1
      return
    }
    const group = memberOf.get(node.node_uuid) ?? derivedGroup(node, input.grouping)
    if (group !== null) {
      let entry = groups.get(group)
      if (!entry) groups.set(group, (entry = { label: groupLabel(group, input.userGroups), members: [] }))
      entry.members.push(node.unique_id)
    }
    if (group !== null && input.collapsed.has(group)) {
      let item = groupItems.get(group)
      if (!item) {
        item = { kind: 'group', id: group, label: groupLabel(group, input.userGroups), members: [] }
        groupItems.set(group, item)
        items.push(item)
      }
      item.members.push(node.unique_id)
      itemOf[i] = group
    } else {
      items.push({ kind: 'node', id: node.unique_id, node, group })
      itemOf[i] = node.unique_id
    }
  })

  const edges = new Map<string, VisibleEdge>()
  for (const [parent, child] of input.edges) {
    const source = itemOf[parent]
    const target = itemOf[child]
    if (source == null || target == null || source === target) continue
    const id = `${source}->${target}`
    const known = edges.get(id)
    if (known) known.count += 1
    else edges.set(id, { id, source, target, count: 1 })
  }
  return { items, edges: [...edges.values()], groups, hidden }
}

/** unique_ids within ``up`` levels upstream and ``down`` levels downstream of ``focus`` (itself included). */
export function neighbourhood(
  nodes: OutlineNode[],
  edges: [number, number][],
  focus: string,
  up: number,
  down: number,
): Set<string> {
  const index = new Map(nodes.map((n, i) => [n.unique_id, i]))
  const start = index.get(focus)
  if (start === undefined) return new Set()
  const parents: number[][] = nodes.map(() => [])
  const children: number[][] = nodes.map(() => [])
  for (const [p, c] of edges) {
    parents[c]!.push(p)
    children[p]!.push(c)
  }
  const seen = new Set<number>([start])
  const walk = (next: number[][], levels: number) => {
    let frontier = [start]
    for (let level = 0; level < levels && frontier.length > 0; level++) {
      const following: number[] = []
      for (const i of frontier)
        for (const j of next[i]!)
          if (!seen.has(j)) {
            seen.add(j)
            following.push(j)
          }
      frontier = following
    }
  }
  walk(parents, up)
  walk(children, down)
  return new Set([...seen].map((i) => nodes[i]!.unique_id))
}

/** A case-insensitive search over names and unique_ids; every word must match. */
export function search(nodes: OutlineNode[], text: string): Set<string> {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean)
  return new Set(
    nodes
      .filter((n) => {
        const haystack = `${n.name} ${n.unique_id}`.toLowerCase()
        return words.every((w) => haystack.includes(w))
      })
      .map((n) => n.unique_id),
  )
}
