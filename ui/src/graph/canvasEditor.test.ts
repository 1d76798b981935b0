import { describe, expect, it } from 'vitest'
import type { CanvasView } from '@/api/client'
import { applyCommand } from './canvasEditor'

const EMPTY: CanvasView = { project_id: 'shop', workspace: 'mine', version: 0, grouping: null, collapsed: [], positions: {}, groups: [] }

describe('applyCommand (the optimistic preview of a canvas edit)', () => {
  it('moves, groups, collapses and resets the way the server records it', () => {
    let view = applyCommand(EMPTY, { type: 'move_nodes', positions: [{ node_uuid: 'a', x: 1, y: 2 }] })
    view = applyCommand(view, { type: 'create_group', group_id: 'g', name: '  Marts ', members: ['b', 'a', 'a'] })
    view = applyCommand(view, { type: 'set_collapsed', keys: ['group:g', 'folder:models'], collapsed: true })
    view = applyCommand(view, { type: 'set_collapsed', keys: ['folder:models'], collapsed: false })
    view = applyCommand(view, { type: 'set_grouping', grouping: 'tag' })
    expect(view.positions).toEqual({ a: [1, 2] })
    expect(view.groups).toEqual([{ group_id: 'g', name: 'Marts', members: ['a', 'b'] }])
    expect(view.collapsed).toEqual(['group:g'])
    expect(view.grouping).toBe('tag')
    view = applyCommand(view, { type: 'delete_group', group_id: 'g' })
    expect((view.groups ?? []).length + (view.collapsed ?? []).length).toBe(0)
    expect(applyCommand(view, { type: 'reset_positions', node_uuids: [] }).positions).toEqual({})
  })

  it('never changes the cached object it was given', () => {
    const before = JSON.stringify(EMPTY)
    applyCommand(EMPTY, { type: 'move_nodes', positions: [{ node_uuid: 'a', x: 1, y: 2 }] })
    expect(JSON.stringify(EMPTY)).toBe(before)
  })
})
