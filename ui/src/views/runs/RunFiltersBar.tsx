// The runs list's filters. Choices apply at once; typed text applies after a pause (or Enter), so the list is not
// re-read for every keystroke.
import { useEffect, useRef, useState, type InputHTMLAttributes } from 'react'
import type { RunFilters } from '@/api/hooks'
import { useEnvironments, useProjects } from '@/api/hooks'
import { isoToLocalInput, localInputToIso, RUN_STATUSES } from './runsQuery'

const TYPING_PAUSE_MS = 400

/** A text box that reports its value once the user stops typing, on Enter and on leaving the box. */
function SettledTextInput({ value, onSettle, ...rest }: { value: string; onSettle: (value: string) => void } & Omit<InputHTMLAttributes<HTMLInputElement>, 'value' | 'onChange'>) {
  const [draft, setDraft] = useState(value)
  const [lastSeen, setLastSeen] = useState(value)
  if (value !== lastSeen) {
    // the URL changed under us (Clear filters, back button): show what it says now
    setLastSeen(value)
    setDraft(value)
  }
  // the parent re-renders (the list refreshes itself): that must not restart the pause
  const settle = useRef(onSettle)
  useEffect(() => {
    settle.current = onSettle
  })
  useEffect(() => {
    if (draft === value) return
    const timer = setTimeout(() => settle.current(draft), TYPING_PAUSE_MS)
    return () => clearTimeout(timer)
  }, [draft, value])
  return (
    <input
      {...rest}
      value={draft}
      onChange={(e) => setDraft(e.target.value)}
      onBlur={() => draft !== value && onSettle(draft)}
      onKeyDown={(e) => e.key === 'Enter' && draft !== value && onSettle(draft)}
    />
  )
}

export function RunFiltersBar({ tenant, filters, onChange }: { tenant: string; filters: RunFilters; onChange: (filters: RunFilters) => void }) {
  const projects = useProjects(tenant)
  const environments = useEnvironments(tenant, filters.project ?? null)
  const set = (key: keyof RunFilters, value: string | undefined) => onChange({ ...filters, [key]: value || undefined })
  const anySet = Object.values(filters).some(Boolean)

  return (
    <form className="runs-filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
      <label>
        <span>Project</span>
        <select
          value={filters.project ?? ''}
          // an environment id belongs to a project: a new project clears it
          onChange={(e) => onChange({ ...filters, project: e.target.value || undefined, environment: undefined })}
        >
          <option value="">All projects</option>
          {(projects.data?.items ?? []).map((p) => (
            <option key={p.project_id} value={p.project_id}>
              {p.name}
            </option>
          ))}
          {filters.project && !projects.data?.items.some((p) => p.project_id === filters.project) && (
            <option value={filters.project}>{filters.project}</option>
          )}
        </select>
      </label>
      <label>
        <span>Environment</span>
        {filters.project ? (
          <select value={filters.environment ?? ''} onChange={(e) => set('environment', e.target.value)}>
            <option value="">All environments</option>
            {(environments.data?.items ?? []).map((env) => (
              <option key={env.environment_id} value={env.environment_id}>
                {env.name}
              </option>
            ))}
            {filters.environment && !environments.data?.items.some((env) => env.environment_id === filters.environment) && (
              <option value={filters.environment}>{filters.environment}</option>
            )}
          </select>
        ) : (
          // without a project there is no list to choose from, but "every prod run" is still a fair question
          <SettledTextInput value={filters.environment ?? ''} onSettle={(v) => set('environment', v.trim())} placeholder="any" size={10} />
        )}
      </label>
      <label>
        <span>Status</span>
        <select value={filters.status ?? ''} onChange={(e) => set('status', e.target.value)}>
          <option value="">Any status</option>
          {RUN_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s.replace('_', ' ')}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span>Requested by</span>
        <SettledTextInput value={filters.actor ?? ''} onSettle={(v) => set('actor', v.trim())} placeholder="anyone" size={14} />
      </label>
      <label>
        <span>Since</span>
        <input type="datetime-local" value={isoToLocalInput(filters.since)} onChange={(e) => set('since', localInputToIso(e.target.value))} />
      </label>
      {anySet && (
        <button type="button" className="link runs-clear-filters" onClick={() => onChange({})}>
          Clear filters
        </button>
      )}
    </form>
  )
}
