// Searching a run's log: every (case-insensitive) occurrence of the query, and each line cut into plain and
// highlighted pieces. Pure functions over plain strings, so they are tested without a DOM.

export type LogMatch = {
  /** Index of the line in the list searched. */
  lineIndex: number
  /** Which occurrence in that line (0 for the first). */
  occurrence: number
  start: number
  end: number
}

export type Segment = { text: string; hit: boolean; occurrence: number }

/** Past this many, counting on would only cost time: the UI says "N+ matches". */
export const MAX_MATCHES = 10_000

/** Start offsets of every non-overlapping occurrence of `needle` (already lower-cased) in `text`. */
function occurrences(text: string, needle: string): number[] {
  const found: number[] = []
  const haystack = text.toLowerCase()
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) found.push(at)
  return found
}

export function findMatches(lines: readonly string[], query: string, limit = MAX_MATCHES): LogMatch[] {
  const needle = query.toLowerCase()
  if (!needle) return []
  const matches: LogMatch[] = []
  for (let lineIndex = 0; lineIndex < lines.length && matches.length < limit; lineIndex++) {
    const text = lines[lineIndex] ?? ''
    // a cheap test first: most lines do not match
    if (!text.toLowerCase().includes(needle)) continue
    occurrences(text, needle).forEach((start, occurrence) => {
      if (matches.length < limit) matches.push({ lineIndex, occurrence, start, end: start + needle.length })
    })
  }
  return matches
}

/** The line as pieces to render, hits marked and numbered in order (to highlight "the current one"). */
export function highlightSegments(text: string, query: string): Segment[] {
  const needle = query.toLowerCase()
  if (!needle) return [{ text, hit: false, occurrence: -1 }]
  const segments: Segment[] = []
  let from = 0
  occurrences(text, needle).forEach((start, occurrence) => {
    if (start > from) segments.push({ text: text.slice(from, start), hit: false, occurrence: -1 })
    segments.push({ text: text.slice(start, start + needle.length), hit: true, occurrence })
    from = start + needle.length
  })
  if (from < text.length || segments.length === 0) segments.push({ text: text.slice(from), hit: false, occurrence: -1 })
  return segments
}

/** The match to move to from `current` (wrapping around both ends); -1 when there is none. */
export function stepMatch(current: number, total: number, direction: 1 | -1): number {
  if (total === 0) return -1
  if (current < 0) return direction === 1 ? 0 : total - 1
  return (current + direction + total) % total
}

export function matchCountLabel(total: number, limit = MAX_MATCHES): string {
  if (total >= limit) return `${limit.toLocaleString()}+ matches`
  return `${total.toLocaleString()} match${total === 1 ? '' : 'es'}`
}
