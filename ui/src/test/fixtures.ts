// Small API answers for view tests, shaped by the generated schema so a contract change breaks the tests too.
import type { GraphVersion, NodeDetail, NodeDiff, VersionDiff, Schemas } from '@/api/client'

export function version(n: number): GraphVersion {
  return {
    graph_version: n,
    previous_version: n - 1,
    created_at: '2026-12-01T00:00:00Z',
    adapter_type: 'duckdb',
    dbt_version: '1.11.0',
    dbt_project_name: 'shop',
    schema_version: 12,
    manifest_sha256: 'm',
    catalog_sha256: null,
    nodes: 10,
    edges: 9,
    added: 0,
    changed: 0,
    modified: 0,
    removed: 0,
    renamed: 0,
    macros_changed: 0,
    snapshot_key: 's',
    code_key: 'c',
  }
}

export function entry(kind: NodeDiff['kind'], uniqueId: string, extra: Partial<NodeDiff> = {}): NodeDiff {
  return { kind, unique_id: uniqueId, node_uuid: `uuid-${uniqueId}`, resource_type: 'model', aspects: [], modified: false, ...extra }
}

export const DIFF: VersionDiff = {
  from_version: 2,
  to_version: 3,
  added: [entry('added', 'model.shop.new_orders')],
  removed: [entry('removed', 'model.shop.legacy')],
  renamed: [
    entry('renamed', 'model.shop.plan_tier_lookup', {
      old_unique_id: 'model.shop.plan_tiers',
      aspects: ['fqn'],
    }),
  ],
  changed: [
    entry('changed', 'model.shop.customers', { aspects: ['body', 'description'], modified: true }),
    entry('changed', 'seed.shop.countries', { resource_type: 'seed', aspects: ['checksum'] }),
  ],
}

type NodeOverrides = Partial<Omit<NodeDetail, 'node'>> & { node?: Partial<Schemas['GraphNode']>; lastStatus?: string | null; validFrom?: number }

export function nodeDetail(uniqueId: string, { node, lastStatus = null, validFrom = 1, ...detail }: NodeOverrides = {}): NodeDetail {
  const [resourceType = 'model', packageName = 'shop'] = uniqueId.split('.')
  return {
    graph_version: 3,
    node: {
      node_uuid: `uuid-${uniqueId}`,
      valid_from: validFrom,
      last_status: lastStatus,
      node: { unique_id: uniqueId, name: uniqueId.split('.').pop() ?? uniqueId, resource_type: resourceType, package_name: packageName, ...node },
    },
    parents: [],
    children: [],
    tests: [],
    raw_code: null,
    compiled_code: null,
    ...detail,
  }
}
