import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { vi } from 'vitest'
import type { RunView } from '@/api/client'
import { ME } from '@/test/runsTestKit'
import { json, renderView, stubFetch } from '@/test/views'
import RunsView from './RunsView'

function run(n: number, extra: Partial<RunView> = {}): RunView {
  return {
    run_id: `${String(n).padStart(8, '0')}-0000-4000-8000-000000000000`,
    project_id: 'demo',
    environment_id: n % 2 ? 'dev' : 'prod',
    status: 'success',
    requested_by: 'alice',
    requested_at: '2026-01-01T10:00:00Z',
    started_at: '2026-01-01T10:00:01Z',
    finished_at: '2026-01-01T10:00:11Z',
    node_counts: { success: 3, pass: 2, warn: 1 },
    totals: { estimated_seconds: 12 },
    version: 1,
    ...extra,
  }
}

// Three pages, chained by cursor: none -> c1 -> c2 (the last one has no next_cursor).
const PAGES: Record<string, { items: RunView[]; next_cursor: string | null }> = {
  '': { items: [run(1), run(2)], next_cursor: 'c1' },
  c1: { items: [run(3), run(4)], next_cursor: 'c2' },
  c2: { items: [run(5)], next_cursor: null },
}

let requests: Request[]

function runRequests(): URLSearchParams[] {
  return requests.map((r) => new URL(r.url)).filter((u) => u.pathname === '/api/tenants/t1/runs').map((u) => u.searchParams)
}

const lastRunsQuery = () => runRequests().at(-1) ?? new URLSearchParams()

beforeEach(() => {
  ;({ requests } = stubFetch(
    (_req, url) => (url.pathname === '/api/tenants/t1/runs' ? json(PAGES[url.searchParams.get('cursor') ?? ''] ?? { items: [] }) : undefined),
    (_req, url) => (url.pathname === '/api/tenants/t1/projects' ? json({ items: [{ project_id: 'demo', name: 'Demo shop' }] }) : undefined),
    (_req, url) =>
      url.pathname === '/api/tenants/t1/projects/demo/environments'
        ? json({ items: [{ environment_id: 'prod', name: 'Production' }, { environment_id: 'dev', name: 'Development' }] })
        : undefined,
  ))
})
afterEach(() => vi.unstubAllGlobals())

function renderRuns(url = '/runs') {
  return renderView(<RunsView />, { route: '/runs', url, me: ME })
}

const location = () => screen.getByTestId('location').textContent ?? ''
const header = (name: RegExp) => within(screen.getByRole('columnheader', { name })).getByRole('button')
const shownRunIds = () => screen.getAllByRole('link').map((a) => a.textContent)

describe('RunsView', () => {
  it('asks for the newest runs first and shows them with a link to each', async () => {
    renderRuns()
    expect(await screen.findByText('00000001')).toBeInTheDocument()
    const query = lastRunsQuery()
    expect(query.get('sort')).toBe('requested_at')
    expect(query.get('order')).toBe('desc')
    expect(query.get('limit')).toBe('25')
    expect(query.has('cursor')).toBe(false)
    const link = screen.getAllByRole('link')[0]
    expect(link).toHaveAttribute('href', `/runs/${run(1).run_id}`)
    expect(screen.getByRole('columnheader', { name: /requested$/i })).toHaveAttribute('aria-sort', 'descending')
  })

  it('sorts on the server when a header is clicked, and flips the order on a second click', async () => {
    const user = userEvent.setup()
    renderRuns()
    await screen.findByText('00000001')

    await user.click(header(/status/i))
    await waitFor(() => expect(lastRunsQuery().get('sort')).toBe('status'))
    expect(lastRunsQuery().get('order')).toBe('asc') // names and statuses start A to Z
    expect(location()).toBe('/runs?sort=status&order=asc')
    expect(screen.getByRole('columnheader', { name: /status/i })).toHaveAttribute('aria-sort', 'ascending')

    await user.click(header(/status/i))
    await waitFor(() => expect(lastRunsQuery().get('order')).toBe('desc'))
    expect(location()).toBe('/runs?sort=status')

    await user.click(header(/duration/i))
    await waitFor(() => expect(lastRunsQuery().get('sort')).toBe('duration'))
    expect(lastRunsQuery().get('order')).toBe('desc') // times and durations start with the largest
  })

  it('pages forward with next_cursor and back through the cursors it followed', async () => {
    const user = userEvent.setup()
    renderRuns()
    await screen.findByText('00000001')
    const previous = screen.getByRole('button', { name: /previous/i })
    const next = screen.getByRole('button', { name: /next/i })
    expect(previous).toBeDisabled()

    await user.click(next)
    await waitFor(() => expect(lastRunsQuery().get('cursor')).toBe('c1'))
    await screen.findByText('Page 2')
    expect(shownRunIds()).toEqual(['00000003', '00000004'])

    await user.click(screen.getByRole('button', { name: /next/i }))
    await waitFor(() => expect(lastRunsQuery().get('cursor')).toBe('c2'))
    await screen.findByText('Page 3')
    expect(shownRunIds()).toEqual(['00000005'])
    expect(screen.getByRole('button', { name: /next/i })).toBeDisabled() // no next_cursor: the last page

    await user.click(screen.getByRole('button', { name: /previous/i }))
    await screen.findByText('Page 2')
    expect(shownRunIds()).toEqual(['00000003', '00000004'])

    await user.click(screen.getByRole('button', { name: /previous/i }))
    await screen.findByText('Page 1')
    expect(shownRunIds()).toEqual(['00000001', '00000002'])
    expect(screen.getByRole('button', { name: /previous/i })).toBeDisabled()
  })

  it('starts again from the first page when the order changes', async () => {
    const user = userEvent.setup()
    renderRuns()
    await screen.findByText('00000001')
    await user.click(screen.getByRole('button', { name: /next/i }))
    await screen.findByText('Page 2')

    await user.click(header(/project/i))
    await screen.findByText('Page 1')
    const query = lastRunsQuery()
    expect(query.get('sort')).toBe('project')
    expect(query.has('cursor')).toBe(false)
  })

  it('changes the page size on the server and in the URL', async () => {
    const user = userEvent.setup()
    renderRuns()
    await screen.findByText('00000001')
    await user.selectOptions(screen.getByRole('combobox', { name: /rows per page/i }), '50')
    await waitFor(() => expect(lastRunsQuery().get('limit')).toBe('50'))
    expect(location()).toBe('/runs?limit=50')
  })

  it('filters on the server and keeps the filters in the URL', async () => {
    const user = userEvent.setup()
    renderRuns()
    await screen.findByText('00000001')
    await user.selectOptions(screen.getByRole('combobox', { name: /status/i }), 'failed')
    await waitFor(() => expect(lastRunsQuery().get('status')).toBe('failed'))
    expect(location()).toBe('/runs?status=failed')

    await user.type(screen.getByRole('textbox', { name: /requested by/i }), 'bob{Enter}')
    await waitFor(() => expect(lastRunsQuery().get('actor')).toBe('bob'))
    expect(location()).toBe('/runs?status=failed&actor=bob')
  })

  it('reads a linked list from the URL', async () => {
    renderRuns('/runs?project=demo&environment=prod&sort=actor&order=asc&limit=100')
    await screen.findByText('00000001')
    const query = lastRunsQuery()
    expect(Object.fromEntries(query)).toEqual({ project: 'demo', environment: 'prod', sort: 'actor', order: 'asc', limit: '100' })
    expect(screen.getByRole('columnheader', { name: /requested by/i })).toHaveAttribute('aria-sort', 'ascending')
    await waitFor(() => expect(screen.getByRole('combobox', { name: /environment/i })).toHaveValue('prod'))
  })

  it('says so when no run matches, and offers to clear the filters', async () => {
    const user = userEvent.setup()
    stubFetch((_req, url) => (url.pathname === '/api/tenants/t1/runs' ? json({ items: [], next_cursor: null }) : json({ items: [] })))
    renderRuns('/runs?status=rejected')
    expect(await screen.findByText(/no run matches these filters/i)).toBeInTheDocument()
    await user.click(screen.getAllByRole('button', { name: /clear filters/i })[0] as HTMLElement)
    await waitFor(() => expect(location()).toBe('/runs'))
  })

  it('shows the API error', async () => {
    stubFetch(() => json({ status: 400, detail: "'x' is not a runs cursor" }, 400))
    renderRuns()
    expect(await screen.findByRole('alert')).toHaveTextContent("'x' is not a runs cursor")
  })
})
