// The runs list's query (filters, order, page size) as URL search params, so a filtered, sorted list is a link.
// Only what differs from the defaults is written, which keeps the plain /runs URL plain.
import type { RunSort } from '@/api/client'
import type { RunFilters } from '@/api/hooks'

export const RUN_SORTS = [
  'requested_at',
  'started_at',
  'finished_at',
  'duration',
  'status',
  'environment',
  'project',
  'actor',
] as const satisfies readonly RunSort[]

export const PAGE_SIZES = [25, 50, 100] as const
export type PageSize = (typeof PAGE_SIZES)[number]
export type SortOrder = 'asc' | 'desc'

/** Every status a run can have, in the order a run goes through them. */
export const RUN_STATUSES = [
  'planning',
  'awaiting_approval',
  'approved',
  'queued',
  'running',
  'success',
  'warning',
  'failed',
  'rejected',
  'canceled',
] as const

export const FILTER_KEYS = ['project', 'environment', 'status', 'actor', 'since'] as const satisfies readonly (keyof RunFilters)[]

export type RunsQuery = {
  filters: RunFilters
  sort: RunSort
  order: SortOrder
  limit: PageSize
}

export const DEFAULT_QUERY: RunsQuery = { filters: {}, sort: 'requested_at', order: 'desc', limit: 25 }

function isSort(value: string | null): value is RunSort {
  return value !== null && (RUN_SORTS as readonly string[]).includes(value)
}

function isPageSize(value: number): value is PageSize {
  return (PAGE_SIZES as readonly number[]).includes(value)
}

/** The query a URL asks for; anything unknown or malformed falls back to the default rather than failing. */
export function readRunsQuery(params: URLSearchParams): RunsQuery {
  const filters: RunFilters = {}
  for (const key of FILTER_KEYS) {
    const value = params.get(key)?.trim()
    if (value) filters[key] = value
  }
  const sort = params.get('sort')
  const order = params.get('order')
  const limit = Number(params.get('limit'))
  return {
    filters,
    sort: isSort(sort) ? sort : DEFAULT_QUERY.sort,
    order: order === 'asc' || order === 'desc' ? order : DEFAULT_QUERY.order,
    limit: isPageSize(limit) ? limit : DEFAULT_QUERY.limit,
  }
}

/** The search params for a query: defaults and empty filters are left out. Other params are kept. */
export function writeRunsQuery(query: RunsQuery, base: URLSearchParams = new URLSearchParams()): URLSearchParams {
  const params = new URLSearchParams(base)
  for (const key of [...FILTER_KEYS, 'sort', 'order', 'limit']) params.delete(key)
  for (const key of FILTER_KEYS) {
    const value = query.filters[key]?.trim()
    if (value) params.set(key, value)
  }
  if (query.sort !== DEFAULT_QUERY.sort) params.set('sort', query.sort)
  if (query.order !== DEFAULT_QUERY.order) params.set('order', query.order)
  if (query.limit !== DEFAULT_QUERY.limit) params.set('limit', String(query.limit))
  return params
}

/** A stable text for "which list is this": when it changes, the pages read so far belong to another list. */
export function listIdentity(query: RunsQuery): string {
  return writeRunsQuery(query).toString()
}

/** Times sort newest first on a first click; names and statuses alphabetically. */
export function firstOrder(sort: RunSort): SortOrder {
  return sort === 'status' || sort === 'environment' || sort === 'project' || sort === 'actor' ? 'asc' : 'desc'
}

/** `<input type="datetime-local">` speaks local wall time without a zone; the API and the URL speak ISO 8601. */
export function localInputToIso(value: string): string | undefined {
  if (!value) return undefined
  const at = new Date(value)
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString()
}

export function isoToLocalInput(value: string | undefined): string {
  if (!value) return ''
  const at = new Date(value)
  if (Number.isNaN(at.getTime())) return ''
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`
}
