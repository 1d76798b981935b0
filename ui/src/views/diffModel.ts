// The Diff view's logic, apart from React: which versions to compare, how the lists filter, and which two
// nodes (unique_id at which version) the SQL diff reads for one entry.
import type { GraphVersion, NodeDiff, VersionDiff } from '@/api/client'

export type DiffKind = NodeDiff['kind']
export const DIFF_KINDS: readonly DiffKind[] = ['added', 'removed', 'renamed', 'changed']

export type VersionPair = { from: number; to: number }

/** Parses a version from the URL: a non-negative integer, else null (0 means "before the first version"). */
export function parseVersion(raw: string | null): number | null {
  if (raw === null || !/^\d+$/.test(raw)) return null
  return Number(raw)
}

/**
 * The versions to compare: the URL's when given, else the latest against its previous one (versions come newest
 * first from the API). With a single version, `from` is 0: everything in it reads as added.
 */
export function chooseVersions(versions: GraphVersion[], from: number | null, to: number | null): VersionPair | null {
  const latest = versions[0]
  if (!latest) return null
  const target = to ?? latest.graph_version
  if (from !== null) return { from, to: target }
  const targetRow = versions.find((v) => v.graph_version === target)
  return { from: targetRow?.previous_version ?? Math.max(0, target - 1), to: target }
}

/** Whether an entry matches the filter box: a case-insensitive substring of its ids, type, or a changed aspect. */
export function matchesFilter(entry: NodeDiff, query: string): boolean {
  const needle = query.trim().toLowerCase()
  if (!needle) return true
  return [entry.unique_id, entry.old_unique_id ?? '', entry.resource_type, ...(entry.aspects ?? [])].some((text) =>
    text.toLowerCase().includes(needle),
  )
}

export type FilteredDiff = Record<DiffKind, NodeDiff[]>

export function filterDiff(diff: VersionDiff, query: string): FilteredDiff {
  return {
    added: diff.added.filter((e) => matchesFilter(e, query)),
    removed: diff.removed.filter((e) => matchesFilter(e, query)),
    renamed: diff.renamed.filter((e) => matchesFilter(e, query)),
    changed: diff.changed.filter((e) => matchesFilter(e, query)),
  }
}

/** The entry a URL's `node` names: by its unique_id in the newer version, or (removed, renamed) its old one. */
export function findEntry(diff: VersionDiff, uniqueId: string | null): NodeDiff | null {
  if (!uniqueId) return null
  const all = [...diff.changed, ...diff.renamed, ...diff.added, ...diff.removed]
  return all.find((e) => e.unique_id === uniqueId) ?? all.find((e) => e.old_unique_id === uniqueId) ?? null
}

/** The node each side of the SQL diff shows: null where it does not exist (added: no left, removed: no right). */
export type CodeSides = { fromId: string | null; toId: string | null }

export function codeSides(entry: NodeDiff): CodeSides {
  switch (entry.kind) {
    case 'added':
      return { fromId: null, toId: entry.unique_id }
    case 'removed':
      return { fromId: entry.unique_id, toId: null }
    case 'renamed':
      return { fromId: entry.old_unique_id ?? entry.unique_id, toId: entry.unique_id }
    case 'changed':
      return { fromId: entry.unique_id, toId: entry.unique_id }
  }
}

export function totalChanges(diff: VersionDiff): number {
  return diff.added.length + diff.removed.length + diff.renamed.length + diff.changed.length
}
