// Canvas edits as commands: each goes to the API in order (one at a time, so the stream sees them as made) and
// the answer, the canvas as the read model now has it, replaces the cached copy. A failed edit is reported and
// the canvas is read again, so the screen never shows an arrangement that was not recorded.
import { useQueryClient } from '@tanstack/react-query'
import { useCallback, useRef } from 'react'
import { errorText, type CanvasCommand } from '@/api/client'
import { keys, sendCanvasCommand } from '@/api/hooks'
import { toast } from '@/lib/bus'

export type Workspace = 'mine' | 'shared'

export function useCanvasEditor(tenant: string, project: string, workspace: Workspace) {
  const client = useQueryClient()
  const queue = useRef<Promise<unknown>>(Promise.resolve())
  return useCallback(
    (command: CanvasCommand): Promise<void> => {
      const key = keys.canvas(tenant, project, workspace)
      const next = queue.current.then(async () => {
        try {
          client.setQueryData(key, await sendCanvasCommand(tenant, project, workspace, command))
        } catch (error) {
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
