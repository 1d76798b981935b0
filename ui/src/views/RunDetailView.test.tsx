import { act, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { RunDetail, RunView } from '@/api/client'
import { FakeEventSource, ME } from '@/test/runsTestKit'
import { json, renderView, stubFetch } from '@/test/views'
import RunDetailView from './RunDetailView'

const RUN_ID = '11111111-2222-4333-8444-555555555555'
const RUN_PATH = `/api/tenants/t1/runs/${RUN_ID}`

function runView(extra: Partial<RunView> = {}): RunView {
  return {
    run_id: RUN_ID,
    project_id: 'demo',
    environment_id: 'prod',
    status: 'awaiting_approval',
    requested_by: 'bob',
    requested_at: '2026-01-01T10:00:00Z',
    select: 'orders+',
    plan_id: 'plan-7',
    version: 3,
    ...extra,
  }
}

function detail(run: RunView, extra: Partial<RunDetail> = {}): RunDetail {
  return {
    run,
    plan: {
      plan_id: 'plan-7',
      plan_hash: 'abc123def4567890',
      inputs: { project_id: 'demo', environment_id: 'prod', graph_version: 1, as_of: '2026-01-01T10:00:00Z' },
      totals: { run: 1, skip: 1, estimated_seconds: 30, estimated_cost: 0.42, currency: 'USD' },
      items: [
        {
          node_uuid: 'u2',
          unique_id: 'model.shop.orders_daily',
          resource_type: 'model',
          action: 'SKIP',
          order: 1,
          wave: 1,
          reasons: [{ policy_id: 'freshness', policy_version: 2, code: 'fresh', message: 'built 5 min ago' }],
        },
        {
          node_uuid: 'u1',
          unique_id: 'model.shop.orders',
          resource_type: 'model',
          action: 'RUN',
          order: 0,
          wave: 0,
          estimate: { seconds: 30, confidence: 'high', cost: 0.42, currency: 'USD' },
          reasons: [{ policy_id: 'select', policy_version: 1, code: 'selected', message: 'selected by orders+' }],
        },
      ],
    },
    explain: {
      plan_hash: 'abc123def4567890',
      headline: '2 node(s): 1 run, 0 partial, 1 skipped',
      summary: {} as NonNullable<RunDetail['explain']>['summary'],
      approvals: [{ role: 'approver', rule_id: 'production', message: 'the environment is a production environment', policy: 'approval_rules v1' }],
    },
    nodes: [],
    ...extra,
  }
}

let log: { requests: Request[]; bodies: unknown[] }

function serve(answer: RunDetail, decisions: Record<string, () => Response> = {}) {
  log = stubFetch((request, url) => {
    if (request.method === 'GET' && url.pathname === RUN_PATH) return json(answer)
    const action = url.pathname.startsWith(`${RUN_PATH}/`) ? url.pathname.slice(RUN_PATH.length + 1) : ''
    if (request.method === 'POST' && decisions[action]) return decisions[action]()
    return undefined
  })
}

const posts = (action: string) =>
  log.requests.flatMap((r, i) => (r.method === 'POST' && r.url.endsWith(`/${action}`) ? [log.bodies[i]] : []))

function renderRun(query = '', me = ME) {
  return renderView(<RunDetailView />, { route: '/runs/:runId', url: `/runs/${RUN_ID}${query}`, me })
}

beforeEach(() => {
  FakeEventSource.instances = []
  vi.stubGlobal('EventSource', FakeEventSource)
})
afterEach(() => vi.unstubAllGlobals())

describe('RunDetailView: deciding', () => {
  it('says why the run needs a decision', async () => {
    serve(detail(runView()))
    renderRun()
    const form = await screen.findByRole('form', { name: /approve or reject/i })
    expect(within(form).getByText(/the environment is a production environment/)).toBeInTheDocument()
  })

  it('will not reject without a comment, and sends nothing', async () => {
    const user = userEvent.setup()
    serve(detail(runView()), { reject: () => json(runView({ status: 'rejected' })) })
    renderRun()
    await user.click(await screen.findByTestId('reject-run'))
    expect(await screen.findByText(/say why the run is rejected/i)).toBeInTheDocument()
    expect(posts('reject')).toHaveLength(0)
  })

  it('rejects with the comment and the plan on screen', async () => {
    const user = userEvent.setup()
    serve(detail(runView()), { reject: () => json(runView({ status: 'rejected' })) })
    renderRun()
    await user.type(await screen.findByLabelText(/comment/i), 'too expensive')
    await user.click(screen.getByTestId('reject-run'))
    await waitFor(() => expect(posts('reject')).toEqual([{ comment: 'too expensive', plan_id: 'plan-7' }]))
  })

  it('refuses comments over 2000 characters before asking the API', async () => {
    const user = userEvent.setup()
    serve(detail(runView()), { approve: () => json(runView({ status: 'approved' })) })
    renderRun()
    const box = await screen.findByLabelText(/comment/i)
    box.removeAttribute('maxlength') // as if pasted past the browser's own limit
    await user.click(box)
    await user.paste('x'.repeat(2001))
    await user.click(screen.getByTestId('approve-run'))
    expect(await screen.findByText(/at most 2000 characters/i)).toBeInTheDocument()
    expect(posts('approve')).toHaveLength(0)
  })

  it("shows the API's reason when it refuses (separation of duties)", async () => {
    const user = userEvent.setup()
    const detailText = 'separation of duties: bob requested this run and may not approve it'
    serve(detail(runView()), { approve: () => json({ status: 403, code: 'forbidden', detail: detailText }, 403) })
    renderRun()
    await user.click(await screen.findByTestId('approve-run'))
    await waitFor(() => expect(posts('approve')).toEqual([{ comment: '', plan_id: 'plan-7' }]))
    expect(await screen.findByText(detailText)).toBeInTheDocument()
  })

  it('offers no decision to someone who may not approve', async () => {
    serve(detail(runView()))
    renderRun('', { ...ME, can_approve: false })
    expect(await screen.findByTestId('run-status')).toHaveTextContent('awaiting approval')
    expect(screen.queryByTestId('approve-run')).not.toBeInTheDocument()
    expect(screen.queryByTestId('reject-run')).not.toBeInTheDocument()
  })
})

describe('RunDetailView: cancelling', () => {
  it('cancels a running run with the reason given', async () => {
    const user = userEvent.setup()
    serve(detail(runView({ status: 'running', started_at: '2026-01-01T10:00:05Z' })), {
      cancel: () => json(runView({ status: 'running', cancel_requested_at: '2026-01-01T10:01:00Z' }), 202),
    })
    renderRun()
    await user.click(await screen.findByTestId('cancel-run'))
    await user.type(screen.getByLabelText(/why cancel/i), 'wrong branch')
    await user.click(screen.getByTestId('cancel-confirm'))
    await waitFor(() => expect(posts('cancel')).toEqual([{ reason: 'wrong branch' }]))
  })

  it('offers no cancel once the run has ended', async () => {
    serve(detail(runView({ status: 'success', finished_at: '2026-01-01T10:05:00Z' })))
    renderRun()
    expect(await screen.findByTestId('run-status')).toHaveTextContent('success')
    expect(screen.queryByTestId('cancel-run')).not.toBeInTheDocument()
  })
})

describe('RunDetailView: tabs', () => {
  it('opens the tab the URL names and writes the chosen tab into it', async () => {
    const user = userEvent.setup()
    serve(detail(runView()))
    renderRun('?tab=plan')
    const items = await screen.findByTestId('plan-items')
    const rows = within(items).getAllByRole('row').slice(1)
    // in execution order, whatever order the plan lists them in
    expect(rows.map((r) => within(r).getAllByRole('cell')[2]?.textContent)).toEqual(['orders model', 'orders_daily model'])
    expect(within(rows[1] as HTMLElement).getByText('SKIP')).toHaveClass('action', 'SKIP')
    expect(within(rows[1] as HTMLElement).getByText('fresh')).toBeInTheDocument()
    const panel = screen.getByRole('tabpanel')
    expect(within(panel).getByText(/1 run, 0 partial, 1 skipped/)).toBeInTheDocument()
    expect(within(panel).getByText(/production environment/)).toBeInTheDocument()

    await user.click(screen.getByRole('tab', { name: 'Artifacts' }))
    expect(screen.getByTestId('location')).toHaveTextContent(`/runs/${RUN_ID}?tab=artifacts`)
    await user.click(screen.getByRole('tab', { name: 'Timeline' }))
    expect(screen.getByTestId('location')).toHaveTextContent(new RegExp(`/runs/${RUN_ID}$`))
  })

  it('lists artifacts with download links', async () => {
    serve(
      detail(runView({ status: 'success', artifacts: [{ name: 'run_results.json', key: 'k', size: 2048, sha256: 'f'.repeat(64) }] })),
    )
    renderRun('?tab=artifacts')
    const link = within(await screen.findByTestId('artifact-list')).getByRole('link', { name: 'run_results.json' })
    expect(link).toHaveAttribute('href', `/api/tenants/t1/runs/${RUN_ID}/artifacts/run_results.json`)
    expect(link).toHaveAttribute('download')
    expect(screen.getByText('2.0 KB')).toBeInTheDocument()
  })

  it('draws the timeline from the nodes', async () => {
    serve(
      detail(runView({ status: 'success', started_at: '2026-01-01T10:00:00Z', finished_at: '2026-01-01T10:00:10Z' }), {
        nodes: [
          { attempt: 1, unique_id: 'model.shop.orders', status: 'success', started_at: '2026-01-01T10:00:00Z', finished_at: '2026-01-01T10:00:04Z', rows_affected: 12 },
          { attempt: 1, unique_id: 'model.shop.orders_daily', status: 'error', started_at: '2026-01-01T10:00:04Z', finished_at: '2026-01-01T10:00:10Z', message: 'division by zero' },
        ],
      }),
    )
    renderRun()
    const timeline = await screen.findByTestId('timeline')
    const bars = timeline.querySelectorAll<HTMLElement>('.bar')
    expect(bars).toHaveLength(2)
    expect(bars[0]).toHaveClass('ok')
    expect(bars[0]?.style.width).toBe('40%')
    expect(bars[1]).toHaveClass('bad')
    expect(bars[1]?.style.left).toBe('40%')
    expect(within(timeline).getByTitle(/division by zero/)).toHaveTextContent('orders_daily')
    expect(within(timeline).getByTitle(/rows: 12/)).toBeInTheDocument()
  })

  it('streams the log on the log tab, with search over it', async () => {
    // jsdom lays nothing out: give the log's scroll box a height so the virtualised list renders rows
    vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(400)
    const user = userEvent.setup()
    serve(detail(runView({ status: 'running', started_at: '2026-01-01T10:00:05Z' })))
    renderRun('?tab=log')
    await screen.findByTestId('run-log')
    const source = FakeEventSource.latest()
    expect(source.url).toBe(`/api/tenants/t1/runs/${RUN_ID}/logs/stream?from=0`)
    act(() => {
      source.open()
      source.line(1, 'Running with dbt=1.11')
      source.line(2, 'ERROR creating model orders')
      source.line(3, 'Error: division by zero; error again')
    })
    const logBox = screen.getByTestId('run-log')
    await waitFor(() => expect(logBox).toHaveTextContent('division by zero'))
    expect(screen.getByTestId('log-follow')).toBeChecked() // a running run's log follows
    expect(screen.getByTestId('log-status')).toHaveTextContent('live')

    await user.type(screen.getByTestId('log-search'), 'error')
    await waitFor(() => expect(screen.getByTestId('log-match-count')).toHaveTextContent('3 matches'))
    expect(logBox.querySelectorAll('mark.hit')).toHaveLength(3)
    await user.keyboard('{Enter}')
    expect(screen.getByTestId('log-match-count')).toHaveTextContent('1 of 3 matches')
    expect(screen.getByTestId('log-follow')).not.toBeChecked() // looking at a match stops following
    expect(logBox.querySelector('mark.run-current')).toHaveTextContent('ERROR')
    await user.keyboard('{Shift>}{Enter}{/Shift}')
    expect(screen.getByTestId('log-match-count')).toHaveTextContent('3 of 3 matches')

    act(() => source.end(3))
    await waitFor(() => expect(screen.getByTestId('log-status')).toHaveTextContent('complete'))
  })
})
