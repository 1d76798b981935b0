// The Log tab: the run's log as it is written (SSE, see useRunLog), virtualised (a log can run to tens of thousands
// of lines), with line numbers, follow mode (stay at the bottom while lines arrive; scrolling up stops it) and
// a search that highlights every match and steps through them.
import { useVirtualizer } from '@tanstack/react-virtual'
import { memo, useDeferredValue, useEffect, useMemo, useRef, useState } from 'react'
import { useRunLog, type RunLogStatus } from '@/api/useRunLog'
import { findMatches, highlightSegments, matchCountLabel, stepMatch, type LogMatch } from './logSearch'

const LINE_HEIGHT = 18 // 12px text at line-height 1.5: the estimate before a wrapped line is measured
const BOTTOM_SLACK = 24 // "at the bottom" within this many pixels

const STATUS_TEXT: Record<RunLogStatus, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  ended: 'complete',
  failed: 'disconnected',
}

const LogLineText = memo(function LogLineText({ text, query, current }: { text: string; query: string; current: number }) {
  if (!query) return <>{text}</>
  return (
    <>
      {highlightSegments(text, query).map((s, i) =>
        s.hit ? (
          <mark key={i} className={s.occurrence === current ? 'hit run-current' : 'hit'}>
            {s.text}
          </mark>
        ) : (
          s.text
        ),
      )}
    </>
  )
})

/** The search box with its count and the previous/next buttons (Enter, Shift+Enter). */
function LogSearch({ query, onQuery, matches, current, onStep }: { query: string; onQuery: (q: string) => void; matches: readonly LogMatch[]; current: number; onStep: (direction: 1 | -1) => void }) {
  return (
    <div className="run-log-search row">
      <input
        type="search"
        placeholder="Search the log"
        aria-label="Search the log"
        data-testid="log-search"
        value={query}
        onChange={(e) => onQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault()
            onStep(e.shiftKey ? -1 : 1)
          } else if (e.key === 'Escape') onQuery('')
        }}
      />
      {query && (
        <>
          <span className="muted" data-testid="log-match-count" aria-live="polite">
            {matches.length > 0 && current >= 0 ? `${current + 1} of ` : ''}
            {matchCountLabel(matches.length)}
          </span>
          <button type="button" onClick={() => onStep(-1)} disabled={matches.length === 0} aria-label="Previous match" title="Previous match (Shift+Enter)">
            ↑
          </button>
          <button type="button" onClick={() => onStep(1)} disabled={matches.length === 0} aria-label="Next match" title="Next match (Enter)">
            ↓
          </button>
        </>
      )}
    </div>
  )
}

export function LogPanel({ tenant, runId, live, expectedLines }: { tenant: string; runId: string; live: boolean; expectedLines?: number | null }) {
  const log = useRunLog(tenant, runId)
  const texts = useMemo(() => log.lines.map((l) => l.text), [log.lines])
  const [query, setQuery] = useState('')
  const searched = useDeferredValue(query) // typing stays responsive while a long log is searched
  const matches = useMemo(() => findMatches(texts, searched), [texts, searched])
  const [currentMatch, setCurrentMatch] = useState(-1)
  const [searchedFor, setSearchedFor] = useState(searched)
  const [following, setFollowing] = useState(live) // a finished run's log opens at its top
  const [wrap, setWrap] = useState(false)
  const scrollRef = useRef<HTMLDivElement>(null)
  const lastScrollTop = useRef(0)

  const virtualizer = useVirtualizer({
    count: log.lines.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => LINE_HEIGHT,
    overscan: 30,
  })

  const jumpTo = (index: number) => {
    const match = matches[index]
    setCurrentMatch(index)
    if (!match) return
    setFollowing(false) // reading a match: new lines must not pull the view away
    virtualizer.scrollToIndex(match.lineIndex, { align: 'center' })
  }

  if (searched !== searchedFor) {
    // a new query has no current match yet: Enter (or ↓) goes to its first. Lines only ever append, so for the
    // same query the match indexes stay valid as the log grows.
    setSearchedFor(searched)
    setCurrentMatch(-1)
  }

  useEffect(() => {
    if (following && log.lines.length > 0) virtualizer.scrollToIndex(log.lines.length - 1, { align: 'end' })
  }, [following, log.lines.length, virtualizer])

  const onScroll = () => {
    const el = scrollRef.current
    if (!el) return
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < BOTTOM_SLACK
    // Following only ever scrolls down, so a move up is the reader's: stop following. Reaching the bottom again
    // while lines still arrive picks following back up, as in a terminal.
    if (el.scrollTop < lastScrollTop.current - 1 && !atBottom) setFollowing(false)
    else if (atBottom && live && el.scrollTop > lastScrollTop.current) setFollowing(true)
    lastScrollTop.current = el.scrollTop
  }

  const current = matches[currentMatch]
  return (
    <div className="run-log-panel stack">
      <div className="run-log-toolbar row">
        <span className={`run-log-status ${log.status}`} data-testid="log-status">
          <i className="dot" aria-hidden="true" /> {STATUS_TEXT[log.status]}
        </span>
        <span className="muted">
          {log.lines.length.toLocaleString()}
          {expectedLines && log.lines.length < expectedLines ? ` / ${expectedLines.toLocaleString()}` : ''} lines
        </span>
        <LogSearch
          query={query}
          onQuery={setQuery}
          matches={matches}
          current={currentMatch}
          onStep={(direction) => jumpTo(stepMatch(currentMatch, matches.length, direction))}
        />
        <span className="run-log-options row">
          <label className="run-toggle">
            <input type="checkbox" data-testid="log-follow" checked={following} onChange={(e) => setFollowing(e.target.checked)} />
            Follow
          </label>
          <label className="run-toggle">
            <input type="checkbox" checked={wrap} onChange={(e) => setWrap(e.target.checked)} />
            Wrap
          </label>
          <button type="button" onClick={() => { setFollowing(false); virtualizer.scrollToIndex(0) }} title="First line">
            Top
          </button>
          <button type="button" onClick={() => setFollowing(true)} title="Last line, and follow">
            End
          </button>
        </span>
      </div>
      {log.error && <div className="error-box" role="alert">{log.error}</div>}
      <div
        ref={scrollRef}
        className={`log run-log${wrap ? ' run-log-wrap' : ''}`}
        data-testid="run-log"
        role="log"
        aria-label="Run log"
        tabIndex={0}
        onScroll={onScroll}
      >
        {log.lines.length === 0 ? (
          <div className="muted">{log.status === 'ended' ? 'This run wrote no log.' : 'Waiting for log lines…'}</div>
        ) : (
          <div className="run-log-canvas" style={{ height: virtualizer.getTotalSize() }}>
            {virtualizer.getVirtualItems().map((item) => {
              const line = log.lines[item.index]
              if (!line) return null
              return (
                <div
                  key={item.key}
                  data-index={item.index}
                  ref={virtualizer.measureElement}
                  className="run-log-line"
                  style={{ transform: `translateY(${item.start}px)` }}
                >
                  <span className="line-no">{line.line}</span>
                  <span className="run-line-text">
                    <LogLineText text={line.text} query={searched} current={current?.lineIndex === item.index ? current.occurrence : -1} />
                  </span>
                </div>
              )
            })}
          </div>
        )}
      </div>
    </div>
  )
}
