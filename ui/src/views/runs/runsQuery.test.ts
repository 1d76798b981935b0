import { describe, expect, it } from 'vitest'
import { DEFAULT_QUERY, firstOrder, isoToLocalInput, listIdentity, localInputToIso, readRunsQuery, writeRunsQuery } from './runsQuery'

describe('runs query in the URL', () => {
  it('reads filters, order and page size', () => {
    const query = readRunsQuery(new URLSearchParams('project=demo&status=failed&sort=duration&order=asc&limit=50&actor=%20bob%20'))
    expect(query).toEqual({ filters: { project: 'demo', status: 'failed', actor: 'bob' }, sort: 'duration', order: 'asc', limit: 50 })
  })

  it('falls back to the defaults for anything unknown', () => {
    expect(readRunsQuery(new URLSearchParams('sort=drop_table&order=up&limit=7&status='))).toEqual(DEFAULT_QUERY)
  })

  it('writes only what differs from the defaults and keeps unrelated params', () => {
    const params = writeRunsQuery({ ...DEFAULT_QUERY, filters: { environment: 'prod', actor: '' } }, new URLSearchParams('tab=x&sort=status'))
    expect(params.toString()).toBe('tab=x&environment=prod')
  })

  it('round-trips', () => {
    const query = { filters: { project: 'p', since: '2026-01-01T00:00:00.000Z' }, sort: 'actor' as const, order: 'asc' as const, limit: 100 as const }
    expect(readRunsQuery(writeRunsQuery(query))).toEqual(query)
  })

  it('gives another list another identity (so its pages start over)', () => {
    expect(listIdentity(DEFAULT_QUERY)).not.toBe(listIdentity({ ...DEFAULT_QUERY, order: 'asc' }))
    expect(listIdentity(DEFAULT_QUERY)).not.toBe(listIdentity({ ...DEFAULT_QUERY, limit: 50 }))
  })

  it('sorts times newest first and names alphabetically on a first click', () => {
    expect(firstOrder('requested_at')).toBe('desc')
    expect(firstOrder('duration')).toBe('desc')
    expect(firstOrder('actor')).toBe('asc')
  })

  it('converts between the datetime-local input and ISO 8601', () => {
    const iso = localInputToIso('2026-03-04T05:06')
    expect(iso).toBe(new Date(2026, 2, 4, 5, 6).toISOString())
    expect(isoToLocalInput(iso)).toBe('2026-03-04T05:06')
    expect(localInputToIso('')).toBeUndefined()
    expect(isoToLocalInput('not a date')).toBe('')
  })
})
