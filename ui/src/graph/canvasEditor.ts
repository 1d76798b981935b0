// Canvas edits as commands: each shows at once (applied to the cached canvas the way the server will apply it),
// then goes to the API in order (one at a time, so the stream records them as made), and the answer, the canvas
// as the read model now has it, replaces the cached copy. A failed edit is reported and the canvas is read again,
// so the screen never keeps an arrangement that was not recorded.
import { useQueryClient } from '@tanstack/react-query'
import { useCallback, useRef } from 'react'
import { errorText, type CanvasCommand, type CanvasView } from '@/api/client'
import { keys, sendCanvasCommand } from '@/api/hooks'
import { toast } from '@/lib/bus'

export type Workspace = 'mine' | 'shared'

/** What ``command`` does to a canvas, as the server's deciders and projector do it (an optimistic preview). */
export function applyCommand(view: CanvasView, command: CanvasCommand): CanvasView {
  switch (command.type) {
    case 'move_nodes': {
      const positions = { ...view.positions }
      for (const p of command.positions) positions[p.node_uuid] = [p.x, p.y]
      return { ...view, positions }
    }
    case 'reset_positions': {
      if (!command.node_uuids?.length) return { ...view, positions: {} }
      const gone = new Set(command.node_uuids)
      return { ...view, positions: Object.fromEntries(Object.entries(view.positions ?? {}).filter(([k]) => !gone.has(k))) }
    }
    case 'create_group':
      return {
        ...view,
        groups: [...(view.groups ?? []), { group_id: command.group_id, name: command.name.trim(), members: [...new Set(command.members ?? [])].sort() }],
      }
    case 'rename_group':
      return { ...view, groups: (view.groups ?? []).map((g) => (g.group_id === command.group_id ? { ...g, name: command.name.trim() } : g)) }
    case 'set_group_members':
      return {
        ...view,
        groups: (view.groups ?? []).map((g) => (g.group_id === command.group_id ? { ...g, members: [...new Set(command.members)].sort() } : g)),
      }
    case 'delete_group':
      return {
        ...view,
        groups: (view.groups ?? []).filter((g) => g.group_id !== command.group_id),
        collapsed: (view.collapsed ?? []).filter((k) => k !== `group:${command.group_id}`),
      }
    case 'set_collapsed': {
      const collapsed = new Set(view.collapsed ?? [])
      for (const key of command.keys) {
        if (command.collapsed) collapsed.add(key)
        else collapsed.delete(key)
      }
      return { ...view, collapsed: [...collapsed].sort() }
    }
    case 'set_grouping':
      return { ...view, grouping: command.grouping }
    case 'set_viewport':
      return { ...view, viewport: command.viewport }
  }
}

export function useCanvasEditor(tenant: string, project: string, workspace: Workspace) {
  const client = useQueryClient()
  const queue = useRef<Promise<unknown>>(Promise.resolve())
  const pending = useRef<CanvasCommand[]>([])
  return useCallback(
    (command: CanvasCommand): Promise<void> => {
      const key = keys.canvas(tenant, project, workspace)
      client.setQueryData<CanvasView>(key, (view) => (view ? applyCommand(view, command) : view))
      pending.current.push(command)
      const next = queue.current.then(async () => {
        try {
          const recorded = await sendCanvasCommand(tenant, project, workspace, command)
          pending.current.shift()
          // edits still on their way stay visible on top of what the server says now
          client.setQueryData(key, pending.current.reduce(applyCommand, recorded))
        } catch (error) {
          pending.current.shift()
          toast(`The canvas edit was not saved: ${errorText(error)}`, 'error')
          await client.invalidateQueries({ queryKey: key })
        }
      })
      queue.current = next
      return next
    },
    [client, tenant, project, workspace],
  )
}
