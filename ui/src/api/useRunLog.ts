// A run's log, live, over Server-Sent Events (GET .../runs/{id}/logs/stream?from=N). Each message's id is its
// line number; the stream ends with `event: end` once the run has ended and every line was sent (at once for a
// finished run). A dropped connection is retried by the browser itself with Last-Event-ID; when the browser gives
// up (an HTTP error answer, e.g. while the server restarts), this hook reconnects with ?from=<last line>.
// Lines arriving in bursts (dbt writes thousands) are buffered and handed to React a few times a second.
import { useEffect, useRef, useState } from 'react'
import type { Schemas } from './client'

export type LogLine = Schemas['LogLine']
export type RunLogStatus = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed'

export type RunLog = {
  lines: readonly LogLine[]
  status: RunLogStatus
  /** Why the log stopped, when it failed. */
  error: string | null
}

export type RunLogOptions = {
  enabled?: boolean
  /** How long lines gather before React sees them. */
  flushMs?: number
  /** The first reconnect delay; it doubles per failed attempt, up to 30 s. */
  retryMs?: number
  /** Reconnects in a row without a single open connection before giving up. */
  maxRetries?: number
}

const CLOSED = 2 // EventSource.CLOSED, spelled out so a stubbed EventSource in tests needs no statics

export function runLogStreamUrl(tenant: string, runId: string, fromLine: number): string {
  return `/api/tenants/${encodeURIComponent(tenant)}/runs/${encodeURIComponent(runId)}/logs/stream?from=${fromLine}`
}

type Progress = { key: string; lines: LogLine[]; status: RunLogStatus; error: string | null }

const INITIAL: Omit<Progress, 'key'> = { lines: [], status: 'connecting', error: null }

export function useRunLog(tenant: string, runId: string, options: RunLogOptions = {}): RunLog {
  const { enabled = true, flushMs = 100, retryMs = 1000, maxRetries = 8 } = options
  const key = `${tenant}/${runId}`
  const [progress, setProgress] = useState<Progress>({ key, ...INITIAL })
  // The last line received for this key outlives a re-run of the effect (StrictMode, toggling `enabled`),
  // so a new connection resumes instead of appending the log a second time.
  const lastLine = useRef<{ key: string; line: number }>({ key, line: 0 })

  useEffect(() => {
    if (!enabled) return
    if (lastLine.current.key !== key) lastLine.current = { key, line: 0 }
    let source: EventSource | null = null
    let buffer: LogLine[] = []
    let flushTimer: ReturnType<typeof setTimeout> | undefined
    let retryTimer: ReturnType<typeof setTimeout> | undefined
    let failures = 0

    const update = (change: (p: Progress) => Partial<Progress>) =>
      setProgress((p) => {
        const current = p.key === key ? p : { key, ...INITIAL }
        return { ...current, ...change(current) }
      })
    const flush = () => {
      flushTimer = undefined
      if (buffer.length === 0) return
      const batch = buffer
      buffer = []
      update((p) => ({ lines: p.lines.concat(batch) }))
    }

    const connect = () => {
      const es = new EventSource(runLogStreamUrl(tenant, runId, lastLine.current.line))
      source = es
      es.onopen = () => {
        failures = 0
        update(() => ({ status: 'live', error: null }))
      }
      es.onmessage = (event: MessageEvent<string>) => {
        const line = Number(event.lastEventId)
        // a resumed stream may repeat what we have; ids that are not line numbers are not log lines
        if (!Number.isInteger(line) || line <= lastLine.current.line) return
        lastLine.current = { key, line }
        buffer.push({ line, text: event.data })
        flushTimer ??= setTimeout(flush, flushMs)
      }
      es.addEventListener('end', () => {
        es.close()
        clearTimeout(flushTimer)
        flush()
        update(() => ({ status: 'ended', error: null }))
      })
      es.onerror = () => {
        if (es.readyState !== CLOSED) {
          update(() => ({ status: 'reconnecting' })) // the browser retries on its own, with Last-Event-ID
          return
        }
        es.close()
        failures += 1
        if (failures > maxRetries) {
          update(() => ({ status: 'failed', error: 'The log stream could not be reached; reload to try again.' }))
          return
        }
        update(() => ({ status: 'reconnecting' }))
        retryTimer = setTimeout(connect, Math.min(retryMs * 2 ** (failures - 1), 30_000))
      }
    }

    connect()
    return () => {
      source?.close()
      clearTimeout(retryTimer)
      clearTimeout(flushTimer)
      flush() // keep what arrived: the next connection resumes after it
    }
  }, [tenant, runId, key, enabled, flushMs, retryMs, maxRetries])

  const current = progress.key === key ? progress : { key, ...INITIAL }
  return { lines: current.lines, status: current.status, error: current.error }
}
