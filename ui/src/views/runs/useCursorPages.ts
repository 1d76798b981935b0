// Keyset pagination remembers where each page began: the API only hands out the cursor of the *next* page, so
// "Previous" walks back through the cursors we followed. Reading another list (other filters or order) starts over.
import { useState } from 'react'

export type CursorPages = {
  /** The cursor of the page on screen (null: the first page). */
  cursor: string | null
  /** 0 for the first page. */
  pageIndex: number
  next: (nextCursor: string) => void
  previous: () => void
}

export function useCursorPages(listIdentity: string): CursorPages {
  const [state, setState] = useState<{ list: string; cursors: string[] }>({ list: listIdentity, cursors: [] })
  // Derived rather than reset in an effect: the first render of a new list already asks for its first page.
  const cursors = state.list === listIdentity ? state.cursors : []
  return {
    cursor: cursors.at(-1) ?? null,
    pageIndex: cursors.length,
    next: (nextCursor) => setState({ list: listIdentity, cursors: [...cursors, nextCursor] }),
    previous: () => setState({ list: listIdentity, cursors: cursors.slice(0, -1) }),
  }
}
