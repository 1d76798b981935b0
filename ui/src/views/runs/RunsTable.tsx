// The runs table: the server sorts and pages (keyset cursors), so TanStack Table runs in manual mode and only
// turns header clicks and Next/Previous into requests for the caller to make.
import {
  createColumnHelper,
  functionalUpdate,
  rowPaginationFeature,
  rowSortingFeature,
  tableFeatures,
  useTable,
  type PaginationState,
  type SortingState,
  type Updater,
} from '@tanstack/react-table'
import { Link } from 'react-router'
import type { RunSort, RunView } from '@/api/client'
import { paths } from '@/app/routes'
import { StatusBadge } from '@/components/common'
import { shortId, when } from '@/lib/format'
import { NodeCounts, RunDuration, RunEstimate, runSeconds } from './runCells'
import { firstOrder, PAGE_SIZES, RUN_SORTS, type PageSize, type SortOrder } from './runsQuery'

const features = tableFeatures({ rowSortingFeature, rowPaginationFeature })
const col = createColumnHelper<typeof features, RunView>()

function sortable(id: RunSort) {
  return { id, sortDescFirst: firstOrder(id) === 'desc' }
}

function Time({ value }: { value: string | null | undefined }) {
  if (!value) return <span className="muted">—</span>
  return (
    <time dateTime={value} title={new Date(value).toLocaleString()}>
      {when(value)}
    </time>
  )
}

// Column ids of sortable columns are the API's sort keys, so a sorting state maps to a request one to one.
const columns = col.columns([
  col.accessor('run_id', {
    id: 'run',
    header: 'Run',
    enableSorting: false,
    cell: (info) => (
      <Link to={paths.run(info.getValue())} className="mono" title={info.getValue()}>
        {shortId(info.getValue())}
      </Link>
    ),
  }),
  col.accessor('project_id', { ...sortable('project'), header: 'Project' }),
  col.accessor('environment_id', { ...sortable('environment'), header: 'Env' }),
  col.accessor('status', { ...sortable('status'), header: 'Status', cell: (info) => <StatusBadge status={info.getValue()} /> }),
  col.accessor('requested_by', { ...sortable('actor'), header: 'Requested by' }),
  col.accessor('requested_at', { ...sortable('requested_at'), header: 'Requested', cell: (info) => <Time value={info.getValue()} /> }),
  col.accessor('started_at', { ...sortable('started_at'), header: 'Started', cell: (info) => <Time value={info.getValue()} /> }),
  col.accessor('finished_at', { ...sortable('finished_at'), header: 'Finished', cell: (info) => <Time value={info.getValue()} /> }),
  col.accessor((run) => runSeconds(run), { ...sortable('duration'), header: 'Duration', cell: (info) => <RunDuration run={info.row.original} /> }),
  col.display({ id: 'nodes', header: 'Nodes', cell: (info) => <NodeCounts counts={info.row.original.node_counts} /> }),
  col.display({ id: 'estimate', header: 'Estimate', cell: (info) => <RunEstimate totals={info.row.original.totals} /> }),
])

function isRunSort(id: string): id is RunSort {
  return (RUN_SORTS as readonly string[]).includes(id)
}

export type RunsTableProps = {
  runs: RunView[]
  sort: RunSort
  order: SortOrder
  onSortChange: (sort: RunSort, order: SortOrder) => void
  pageIndex: number
  pageSize: PageSize
  hasNextPage: boolean
  /** A page is being fetched: paging on would skip or repeat a page, so it waits. */
  busy: boolean
  onNextPage: () => void
  onPreviousPage: () => void
  onPageSizeChange: (size: PageSize) => void
}

export function RunsTable(props: RunsTableProps) {
  const { runs, sort, order, pageIndex, pageSize, hasNextPage } = props
  const sorting: SortingState = [{ id: sort, desc: order === 'desc' }]
  const pagination: PaginationState = { pageIndex, pageSize }

  const table = useTable({
    features,
    columns,
    data: runs,
    getRowId: (run) => run.run_id,
    state: { sorting, pagination },
    manualSorting: true,
    manualPagination: true,
    enableMultiSort: false,
    enableSortingRemoval: false, // the API always orders by something: a third click flips again
    // keyset pages: the page count is unknown, only whether one more page follows
    pageCount: hasNextPage ? pageIndex + 2 : pageIndex + 1,
    onSortingChange: (updater: Updater<SortingState>) => {
      const next = functionalUpdate(updater, sorting)[0]
      if (next && isRunSort(next.id)) props.onSortChange(next.id, next.desc ? 'desc' : 'asc')
    },
    onPaginationChange: (updater: Updater<PaginationState>) => {
      const next = functionalUpdate(updater, pagination)
      if (next.pageSize !== pageSize) props.onPageSizeChange(next.pageSize as PageSize)
      else if (next.pageIndex > pageIndex) props.onNextPage()
      else if (next.pageIndex < pageIndex) props.onPreviousPage()
    },
  })

  return (
    <>
      <div className="runs-table-wrap">
        <table className="runs-table" data-testid="runs-table">
          <thead>
            {table.getHeaderGroups().map((group) => (
              <tr key={group.id}>
                {group.headers.map((h) => {
                  const sorted = h.column.getIsSorted()
                  if (!h.column.getCanSort())
                    return (
                      <th key={h.id}>
                        <table.FlexRender header={h} />
                      </th>
                    )
                  return (
                    <th key={h.id} aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'}>
                      <button type="button" className="runs-th-sort" onClick={h.column.getToggleSortingHandler()}>
                        <table.FlexRender header={h} />
                        <span className={`runs-sort-mark${sorted ? '' : ' runs-idle'}`} aria-hidden="true">
                          {sorted === 'asc' ? '▲' : '▼'}
                        </span>
                      </button>
                    </th>
                  )
                })}
              </tr>
            ))}
          </thead>
          <tbody>
            {table.getRowModel().rows.map((row) => (
              <tr key={row.id}>
                {row.getAllCells().map((cell) => (
                  <td key={cell.id} className={`col-${cell.column.id}`}>
                    <table.FlexRender cell={cell} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav className="runs-pager" aria-label="Pages">
        <button type="button" onClick={() => table.previousPage()} disabled={props.busy || !table.getCanPreviousPage()}>
          ← Previous
        </button>
        <span className="muted">Page {pageIndex + 1}</span>
        <button type="button" onClick={() => table.nextPage()} disabled={props.busy || !table.getCanNextPage()}>
          Next →
        </button>
        <label className="runs-page-size">
          <span className="muted">Rows per page</span>
          <select value={pageSize} onChange={(e) => table.setPageSize(Number(e.target.value))}>
            {PAGE_SIZES.map((size) => (
              <option key={size} value={size}>
                {size}
              </option>
            ))}
          </select>
        </label>
      </nav>
    </>
  )
}
