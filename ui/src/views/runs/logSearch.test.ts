import { describe, expect, it } from 'vitest'
import { findMatches, highlightSegments, matchCountLabel, stepMatch } from './logSearch'

const LOG = ['Running with dbt=1.11', 'ERROR in model orders', 'nothing here', 'error: Error again (error)']

describe('findMatches', () => {
  it('finds every occurrence, case-insensitively, in line order', () => {
    expect(findMatches(LOG, 'error')).toEqual([
      { lineIndex: 1, occurrence: 0, start: 0, end: 5 },
      { lineIndex: 3, occurrence: 0, start: 0, end: 5 },
      { lineIndex: 3, occurrence: 1, start: 7, end: 12 },
      { lineIndex: 3, occurrence: 2, start: 20, end: 25 },
    ])
  })

  it('does not count overlapping occurrences twice', () => {
    expect(findMatches(['aaaa'], 'aa')).toHaveLength(2)
  })

  it('finds nothing for an empty query or a missing word', () => {
    expect(findMatches(LOG, '')).toEqual([])
    expect(findMatches(LOG, 'warehouse')).toEqual([])
  })

  it('stops counting at the limit', () => {
    const lines = Array.from({ length: 100 }, () => 'x x x')
    expect(findMatches(lines, 'x', 10)).toHaveLength(10)
  })
})

describe('highlightSegments', () => {
  it('cuts a line into plain text and numbered hits that keep the original case', () => {
    expect(highlightSegments('error: Error again', 'ERROR')).toEqual([
      { text: 'error', hit: true, occurrence: 0 },
      { text: ': ', hit: false, occurrence: -1 },
      { text: 'Error', hit: true, occurrence: 1 },
      { text: ' again', hit: false, occurrence: -1 },
    ])
  })

  it('rebuilds the line exactly', () => {
    for (const line of LOG) expect(highlightSegments(line, 'e').map((s) => s.text).join('')).toBe(line)
  })

  it('leaves a line without the query (or without a query) whole', () => {
    expect(highlightSegments('nothing here', 'error')).toEqual([{ text: 'nothing here', hit: false, occurrence: -1 }])
    expect(highlightSegments('nothing here', '')).toEqual([{ text: 'nothing here', hit: false, occurrence: -1 }])
  })

  it('numbers hits the way findMatches does, so "the current match" is the same one in both', () => {
    const [, , third] = findMatches(LOG, 'error')
    const hits = highlightSegments(LOG[3] ?? '', 'error').filter((s) => s.hit)
    expect(hits[third?.occurrence ?? -1]?.text).toBe('Error')
  })
})

describe('stepMatch', () => {
  it('goes to the first (next) or last (previous) match from none', () => {
    expect(stepMatch(-1, 5, 1)).toBe(0)
    expect(stepMatch(-1, 5, -1)).toBe(4)
  })

  it('wraps around both ends', () => {
    expect(stepMatch(4, 5, 1)).toBe(0)
    expect(stepMatch(0, 5, -1)).toBe(4)
    expect(stepMatch(2, 5, 1)).toBe(3)
  })

  it('has nowhere to go without matches', () => {
    expect(stepMatch(-1, 0, 1)).toBe(-1)
  })
})

describe('matchCountLabel', () => {
  it('says how many, and when it stopped counting', () => {
    expect(matchCountLabel(0)).toBe('0 matches')
    expect(matchCountLabel(1)).toBe('1 match')
    expect(matchCountLabel(10, 10)).toBe('10+ matches')
  })
})
