// /runs: every run of the tenant, filtered, sorted and paged by the server. The query lives in the URL (a filtered
// list is a link); the cursors of the pages read so far live here (they only mean something for this list).
import { useMemo } from 'react'
import { useSearchParams } from 'react-router'
import type { RunFilters } from '@/api/hooks'
import { useRuns } from '@/api/hooks'
import { useTenant } from '@/app/tenant'
import { Empty, ErrorBox, Loading, Page } from '@/components/common'
import { RunFiltersBar } from './runs/RunFiltersBar'
import { RunsTable } from './runs/RunsTable'
import { listIdentity, readRunsQuery, writeRunsQuery, type RunsQuery } from './runs/runsQuery'
import { useCursorPages } from './runs/useCursorPages'
import './runs.css'

export default function RunsView() {
  const tenant = useTenant()
  const [params, setParams] = useSearchParams()
  const query = useMemo(() => readRunsQuery(params), [params])
  const pages = useCursorPages(listIdentity(query))
  const runs = useRuns(tenant, query.filters, query.sort, query.order, pages.cursor, query.limit)
  const change = (patch: Partial<RunsQuery>) => setParams(writeRunsQuery({ ...query, ...patch }, params))
  const filtered = Object.values(query.filters).some(Boolean)

  return (
    <Page title="Runs" actions={runs.isPlaceholderData ? <span className="muted">loading…</span> : null}>
      <RunFiltersBar tenant={tenant} filters={query.filters} onChange={(filters: RunFilters) => change({ filters })} />
      {runs.isError && <ErrorBox error={runs.error} title="Could not read the runs" />}
      {runs.isPending ? (
        <Loading what="Reading runs" />
      ) : runs.data && runs.data.items.length === 0 && pages.pageIndex === 0 ? (
        <Empty>
          {filtered ? 'No run matches these filters.' : 'No runs yet: request one from a project’s execution plan.'}
          {filtered && (
            <div>
              <button type="button" className="link" onClick={() => change({ filters: {} })}>
                Clear filters
              </button>
            </div>
          )}
        </Empty>
      ) : runs.data ? (
        <RunsTable
          runs={runs.data.items}
          sort={query.sort}
          order={query.order}
          onSortChange={(sort, order) => change({ sort, order })}
          pageIndex={pages.pageIndex}
          pageSize={query.limit}
          hasNextPage={Boolean(runs.data.next_cursor)}
          busy={runs.isPlaceholderData}
          onNextPage={() => runs.data?.next_cursor && pages.next(runs.data.next_cursor)}
          onPreviousPage={pages.previous}
          onPageSizeChange={(limit) => change({ limit })}
        />
      ) : null}
    </Page>
  )
}
