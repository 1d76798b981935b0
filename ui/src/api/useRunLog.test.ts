import { act, renderHook } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FakeEventSource } from '@/test/runsTestKit'
import { runLogStreamUrl, useRunLog } from './useRunLog'

const FLUSH = 50

beforeEach(() => {
  FakeEventSource.instances = []
  vi.useFakeTimers()
  vi.stubGlobal('EventSource', FakeEventSource)
})
afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

function flush() {
  act(() => {
    vi.advanceTimersByTime(FLUSH)
  })
}

function texts(lines: readonly { line: number; text: string }[]) {
  return lines.map((l) => `${l.line}:${l.text}`)
}

describe('runLogStreamUrl', () => {
  it('names the tenant, the run and the line to read after', () => {
    expect(runLogStreamUrl('acme corp', 'r/1', 42)).toBe('/api/tenants/acme%20corp/runs/r%2F1/logs/stream?from=42')
  })
})

describe('useRunLog', () => {
  it('streams lines in order, batched, and stops at the end event', () => {
    const { result } = renderHook(() => useRunLog('t1', 'run-1', { flushMs: FLUSH }))
    const source = FakeEventSource.latest()
    expect(source.from).toBe(0)
    expect(result.current.status).toBe('connecting')

    act(() => {
      source.open()
      source.lines(1, 3)
    })
    expect(result.current.status).toBe('live')
    expect(result.current.lines).toHaveLength(0) // still gathering
    flush()
    expect(texts(result.current.lines)).toEqual(['1:line 1', '2:line 2', '3:line 3'])

    act(() => {
      source.line(4, 'last words')
      source.end(4)
    })
    // the end hands over what was buffered at once, without waiting for the next flush
    expect(texts(result.current.lines).at(-1)).toBe('4:last words')
    expect(result.current.status).toBe('ended')
    expect(source.closed).toBe(true)
    expect(FakeEventSource.instances).toHaveLength(1)
  })

  it('ignores lines it already has (a resumed stream may repeat them)', () => {
    const { result } = renderHook(() => useRunLog('t1', 'run-1', { flushMs: FLUSH }))
    const source = FakeEventSource.latest()
    act(() => {
      source.open()
      source.lines(1, 2)
      source.lines(1, 3)
    })
    flush()
    expect(result.current.lines.map((l) => l.line)).toEqual([1, 2, 3])
  })

  it('lets the browser retry a dropped connection by itself (it resumes with Last-Event-ID)', () => {
    const { result } = renderHook(() => useRunLog('t1', 'run-1', { flushMs: FLUSH, retryMs: 100 }))
    const source = FakeEventSource.latest()
    act(() => {
      source.open()
      source.lines(1, 2)
      source.fail({ closed: false })
    })
    expect(result.current.status).toBe('reconnecting')
    act(() => {
      vi.advanceTimersByTime(10_000)
    })
    expect(FakeEventSource.instances).toHaveLength(1) // no second connection of our own
    act(() => {
      source.open()
      source.line(3, 'after the gap')
    })
    flush()
    expect(result.current.status).toBe('live')
    expect(result.current.lines.map((l) => l.line)).toEqual([1, 2, 3])
  })

  it('reconnects itself from the last line when the browser gives up', () => {
    const { result } = renderHook(() => useRunLog('t1', 'run-1', { flushMs: FLUSH, retryMs: 100 }))
    const first = FakeEventSource.latest()
    act(() => {
      first.open()
      first.lines(1, 5)
      first.fail({ closed: true })
    })
    expect(result.current.status).toBe('reconnecting')
    expect(FakeEventSource.instances).toHaveLength(1)
    act(() => {
      vi.advanceTimersByTime(100)
    })
    const second = FakeEventSource.latest()
    expect(second).not.toBe(first)
    expect(second.from).toBe(5)
    act(() => {
      second.open()
      second.lines(6, 7)
      second.end(7)
    })
    expect(result.current.lines.map((l) => l.line)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(result.current.status).toBe('ended')
  })

  it('backs off between failed reconnects and gives up after maxRetries', () => {
    const { result } = renderHook(() => useRunLog('t1', 'run-1', { flushMs: FLUSH, retryMs: 100, maxRetries: 2 }))
    act(() => FakeEventSource.latest().fail({ closed: true }))
    act(() => {
      vi.advanceTimersByTime(100) // first retry after 100 ms
    })
    expect(FakeEventSource.instances).toHaveLength(2)
    act(() => FakeEventSource.latest().fail({ closed: true }))
    act(() => {
      vi.advanceTimersByTime(150)
    })
    expect(FakeEventSource.instances).toHaveLength(2) // the second retry waits 200 ms
    act(() => {
      vi.advanceTimersByTime(50)
    })
    expect(FakeEventSource.instances).toHaveLength(3)
    act(() => FakeEventSource.latest().fail({ closed: true }))
    expect(result.current.status).toBe('failed')
    expect(result.current.error).toMatch(/could not be reached/)
    act(() => {
      vi.advanceTimersByTime(60_000)
    })
    expect(FakeEventSource.instances).toHaveLength(3)
  })

  it('starts over for another run and closes the old stream', () => {
    const { result, rerender } = renderHook(({ runId }) => useRunLog('t1', runId, { flushMs: FLUSH }), { initialProps: { runId: 'run-1' } })
    const first = FakeEventSource.latest()
    act(() => {
      first.open()
      first.lines(1, 3)
    })
    flush()
    rerender({ runId: 'run-2' })
    expect(first.closed).toBe(true)
    expect(result.current.lines).toHaveLength(0)
    const second = FakeEventSource.latest()
    expect(second.url).toContain('/runs/run-2/')
    expect(second.from).toBe(0)
  })

  it('does not connect while disabled, and resumes (not restarts) when re-enabled', () => {
    const { result, rerender } = renderHook(({ enabled }) => useRunLog('t1', 'run-1', { flushMs: FLUSH, enabled }), { initialProps: { enabled: false } })
    expect(FakeEventSource.instances).toHaveLength(0)
    rerender({ enabled: true })
    act(() => {
      FakeEventSource.latest().open()
      FakeEventSource.latest().lines(1, 2)
    })
    rerender({ enabled: false })
    expect(FakeEventSource.latest().closed).toBe(true)
    expect(result.current.lines).toHaveLength(2) // what arrived is kept
    rerender({ enabled: true })
    expect(FakeEventSource.latest().from).toBe(2)
  })
})
