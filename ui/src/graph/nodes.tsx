// How one item of the graph looks: a dbt node (its kind, name, materialization and last status) or a collapsed
// group (its name and how many nodes it holds). Kept small and memoised: a large graph draws thousands of these.
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react'
import { memo } from 'react'
import type { OutlineNode } from '@/api/client'

export const NODE_WIDTH = 200
export const NODE_HEIGHT = 40
export const GROUP_WIDTH = 220
export const GROUP_HEIGHT = 56

export type DbtNodeData = { node: OutlineNode; status: string | null; plan: 'RUN' | 'SKIP' | 'PARTIAL' | null; group: string | null }
export type GroupNodeData = { label: string; count: number; groupKey: string; onExpand: (key: string) => void }
export type DbtFlowNode = Node<DbtNodeData, 'dbt'>
// not 'group': React Flow styles its own built-in 'group' node type (.react-flow__node-group)
export type GroupFlowNode = Node<GroupNodeData, 'cluster'>

const SHORT: Record<string, string> = {
  model: 'MDL',
  source: 'SRC',
  seed: 'SEED',
  snapshot: 'SNAP',
  exposure: 'EXP',
  test: 'TEST',
  unit_test: 'UNIT',
  analysis: 'ANL',
  operation: 'OP',
  metric: 'MET',
  semantic_model: 'SEM',
  saved_query: 'SQ',
  function: 'FN',
}

export function statusClass(status: string | null | undefined): string {
  switch (status) {
    case 'success':
    case 'pass':
      return 'ok'
    case 'error':
    case 'fail':
    case 'runtime error':
      return 'bad'
    case 'warn':
      return 'warn'
    case 'skipped':
      return 'skip'
    case 'running':
      return 'running'
    default:
      return 'none'
  }
}

export const DbtNode = memo(function DbtNode({ data, selected }: NodeProps<DbtFlowNode>) {
  const { node, status, plan } = data
  return (
    <div
      className={`lg-node kind-${node.resource_type}${selected ? ' selected' : ''}${plan ? ` plan-${plan}` : ''}`}
      title={`${node.unique_id}${status ? ` — last: ${status}` : ''}`}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <span className="kind">{SHORT[node.resource_type] ?? node.resource_type.slice(0, 4).toUpperCase()}</span>
      <span className="name">{node.version ? `${node.name} v${node.version}` : node.name}</span>
      {plan ? <span className={`plan-badge ${plan}`}>{plan}</span> : node.materialized ? <span className="mat">{node.materialized}</span> : null}
      <span className={`dot ${statusClass(status)}`} aria-label={status ?? 'never run'} />
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  )
})

export const GroupNode = memo(function GroupNode({ data, selected }: NodeProps<GroupFlowNode>) {
  return (
    <div className={`lg-group${selected ? ' selected' : ''}`} onDoubleClick={() => data.onExpand(data.groupKey)}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="label" title={data.groupKey}>
        {data.label}
      </div>
      <div className="count">
        {data.count} node{data.count === 1 ? '' : 's'}
        <button type="button" className="link" onClick={() => data.onExpand(data.groupKey)}>
          expand
        </button>
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  )
})

export const NODE_TYPES = { dbt: DbtNode, cluster: GroupNode }
