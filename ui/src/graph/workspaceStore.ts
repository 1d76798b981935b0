// The graph workspace's view settings that are not canvas edits: what to show (types, search, a dbt selection,
// a focus) and what is selected. They live in the URL where they make a link worth sharing (see GraphWorkspace).
import { create } from 'zustand'
import { DEFAULT_HIDDEN_TYPES } from './model'

export type Focus = { uniqueId: string; up: number; down: number }

type WorkspaceState = {
  hiddenTypes: ReadonlySet<string>
  selected: string | null
  /** ids chosen with shift/ctrl-click or a box selection (to group them) */
  chosen: string[]
  toggleType: (type: string) => void
  select: (id: string | null) => void
  choose: (ids: string[]) => void
}

export const useWorkspace = create<WorkspaceState>()((set) => ({
  hiddenTypes: DEFAULT_HIDDEN_TYPES,
  selected: null,
  chosen: [],
  toggleType: (type) =>
    set((s) => {
      const next = new Set(s.hiddenTypes)
      if (next.has(type)) next.delete(type)
      else next.add(type)
      return { hiddenTypes: next }
    }),
  select: (selected) => set({ selected }),
  // React Flow reports the selection after every redraw: an unchanged selection must not re-render the view
  choose: (chosen) => set((s) => (sameIds(s.chosen, chosen) ? s : { chosen })),
}))

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i])
}
