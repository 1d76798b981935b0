import { describe, expect, it } from 'vitest'
import type { OutlineNode } from '@/api/client'
import { buildGraph, DEFAULT_HIDDEN_TYPES, derivedGroup, neighbourhood, search, type GraphInputs } from './model'

function node(uniqueId: string, path: string, extra: Partial<OutlineNode> = {}): OutlineNode {
  const [resource_type = 'model', package_name = 'shop', name = uniqueId] = uniqueId.split('.')
  return { unique_id: uniqueId, node_uuid: `uuid-${uniqueId}`, name: uniqueId.split('.').pop() ?? name, resource_type, package_name, path, ...extra }
}

// raw -> stg_a -> mart <- stg_b <- raw ; test on mart
const NODES = [
  node('model.shop.mart', 'models/marts/mart.sql', { tags: ['finance'] }),
  node('model.shop.stg_a', 'models/staging/stg_a.sql'),
  node('model.shop.stg_b', 'models/staging/stg_b.sql', { tags: ['pii', 'finance'] }),
  node('source.shop.raw.orders', 'models/sources.yml'),
  node('test.shop.not_null_mart_id', 'models/marts/schema.yml'),
]
const EDGES: [number, number][] = [
  [3, 1],
  [3, 2],
  [1, 0],
  [2, 0],
  [0, 4],
]

function inputs(changes: Partial<GraphInputs> = {}): GraphInputs {
  return {
    nodes: NODES,
    edges: EDGES,
    hiddenTypes: DEFAULT_HIDDEN_TYPES,
    only: null,
    grouping: 'none',
    userGroups: [],
    collapsed: new Set(),
    ...changes,
  }
}

describe('buildGraph', () => {
  it('draws every visible node once, hides tests by default, and keeps edges between drawn nodes', () => {
    const graph = buildGraph(inputs())
    expect(graph.items.map((i) => i.id)).toEqual(['model.shop.mart', 'model.shop.stg_a', 'model.shop.stg_b', 'source.shop.raw.orders'])
    expect(graph.edges.map((e) => e.id).sort()).toEqual([
      'model.shop.stg_a->model.shop.mart',
      'model.shop.stg_b->model.shop.mart',
      'source.shop.raw.orders->model.shop.stg_a',
      'source.shop.raw.orders->model.shop.stg_b',
    ])
    expect(graph.hidden).toBe(1)
  })

  it('folds a collapsed folder into one item whose edges are bundled with a count', () => {
    const graph = buildGraph(inputs({ grouping: 'folder', collapsed: new Set(['folder:models/staging']) }))
    const group = graph.items.find((i) => i.kind === 'group')
    expect(group).toEqual({ kind: 'group', id: 'folder:models/staging', label: 'models/staging', members: ['model.shop.stg_a', 'model.shop.stg_b'] })
    const edges = Object.fromEntries(graph.edges.map((e) => [e.id, e.count]))
    expect(edges).toEqual({ 'folder:models/staging->model.shop.mart': 2, 'source.shop.raw.orders->folder:models/staging': 2 })
  })

  it('puts members of a user group in it whatever the grouping, and names it', () => {
    const userGroups = [{ group_id: 'g1', name: 'Finance', members: ['uuid-model.shop.mart', 'uuid-model.shop.stg_b'] }]
    const graph = buildGraph(inputs({ grouping: 'folder', userGroups, collapsed: new Set(['group:g1']) }))
    const group = graph.items.find((i) => i.id === 'group:g1')
    expect(group?.kind === 'group' && group.label).toBe('Finance')
    expect(group?.kind === 'group' && group.members).toEqual(['model.shop.mart', 'model.shop.stg_b'])
    expect(graph.groups.get('folder:models/staging')?.members).toEqual(['model.shop.stg_a'])
  })

  it('draws only what a search or selection kept, and gives the same items for the same inputs', () => {
    const only = new Set(['model.shop.mart', 'model.shop.stg_a'])
    const a = buildGraph(inputs({ only }))
    const b = buildGraph(inputs({ only: new Set(only) }))
    expect(a.items.map((i) => i.id)).toEqual(['model.shop.mart', 'model.shop.stg_a'])
    expect(a.edges.map((e) => e.id)).toEqual(['model.shop.stg_a->model.shop.mart'])
    expect(JSON.stringify(a.items)).toBe(JSON.stringify(b.items))
  })
})

describe('grouping and neighbourhoods', () => {
  it('derives a group per folder, package, first tag or type', () => {
    const stg = NODES[2]!
    expect(derivedGroup(stg, 'folder')).toBe('folder:models/staging')
    expect(derivedGroup(stg, 'package')).toBe('package:shop')
    expect(derivedGroup(stg, 'tag')).toBe('tag:pii')
    expect(derivedGroup(NODES[1]!, 'tag')).toBeNull()
    expect(derivedGroup(stg, 'type')).toBe('type:model')
    expect(derivedGroup(stg, 'none')).toBeNull()
  })

  it('walks n levels up and down from a focus node', () => {
    expect([...neighbourhood(NODES, EDGES, 'model.shop.stg_a', 1, 0)].sort()).toEqual(['model.shop.stg_a', 'source.shop.raw.orders'])
    expect([...neighbourhood(NODES, EDGES, 'model.shop.stg_a', 0, 1)].sort()).toEqual(['model.shop.mart', 'model.shop.stg_a'])
    expect(neighbourhood(NODES, EDGES, 'model.shop.mart', 5, 5).size).toBe(5)
    expect(neighbourhood(NODES, EDGES, 'nope', 1, 1).size).toBe(0)
  })

  it('searches names and ids with every word', () => {
    expect([...search(NODES, 'STG b')]).toEqual(['model.shop.stg_b'])
    expect(search(NODES, 'raw orders').has('source.shop.raw.orders')).toBe(true)
  })
})
