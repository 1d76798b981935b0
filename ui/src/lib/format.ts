// How numbers, times and durations read in the UI: one place, so every view says it the same way.

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  if (value < 1) return `${Math.round(value * 1000)} ms`
  if (value < 120) return `${value.toFixed(1)} s`
  if (value < 7200) return `${(value / 60).toFixed(1)} min`
  return `${(value / 3600).toFixed(1)} h`
}

export function money(value: number | null | undefined, currency: string | null | undefined): string {
  if (value === null || value === undefined) return '—'
  const digits = value < 1 ? 4 : 2
  return `${value.toFixed(digits)} ${currency ?? ''}`.trim()
}

export function when(value: string | null | undefined, now: Date = new Date()): string {
  if (!value) return '—'
  const at = new Date(value)
  const ago = (now.getTime() - at.getTime()) / 1000
  if (ago >= 0 && ago < 60) return `${Math.round(ago)} s ago`
  if (ago >= 0 && ago < 3600) return `${Math.round(ago / 60)} min ago`
  if (ago >= 0 && ago < 86400) return `${Math.round(ago / 3600)} h ago`
  return at.toISOString().replace('T', ' ').slice(0, 16)
}

export function duration(start: string | null | undefined, end: string | null | undefined): string {
  if (!start || !end) return '—'
  return seconds((new Date(end).getTime() - new Date(start).getTime()) / 1000)
}

export function shortId(id: string): string {
  return id.slice(0, 8)
}

/** The readable tail of a dbt unique_id: ``model.shop.orders`` -> ``orders``; versions and tests keep their suffix. */
export function nodeLabel(uniqueId: string, name?: string): string {
  if (name) return name
  const parts = uniqueId.split('.')
  return parts.slice(2).join('.') || uniqueId
}
