import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DIFF, nodeDetail, version } from '@/test/fixtures'
import { renderView, stubApi } from '@/test/views'
import DiffView from './DiffView'

// Monaco needs a real browser; the views only hand it two texts, which is what these tests look at.
vi.mock('@/components/monaco', () => ({
  SqlDiff: ({ original, modified }: { original: string; modified: string }) => (
    <div>
      <pre data-testid="sql-original">{original}</pre>
      <pre data-testid="sql-modified">{modified}</pre>
    </div>
  ),
  SqlViewer: ({ value }: { value: string }) => <pre>{value}</pre>,
}))

const PROJECT = '/api/tenants/default/projects/demo'

function stubDiffApi() {
  return stubApi({
    [`GET ${PROJECT}/graph/versions`]: () => ({ body: { items: [version(3), version(2), version(1)] } }),
    [`GET ${PROJECT}/graph/diff`]: (_, url) => ({
      body: { ...DIFF, from_version: Number(url.searchParams.get('from')), to_version: Number(url.searchParams.get('to')) },
    }),
    [`GET ${PROJECT}/graph/nodes/model.shop.plan_tiers`]: (_, url) => ({
      body: nodeDetail('model.shop.plan_tiers', { raw_code: `select tier -- v${url.searchParams.get('version')}` }),
    }),
    [`GET ${PROJECT}/graph/nodes/model.shop.plan_tier_lookup`]: (_, url) => ({
      body: nodeDetail('model.shop.plan_tier_lookup', { raw_code: `select tier, interval -- v${url.searchParams.get('version')}` }),
    }),
    [`GET ${PROJECT}/graph/nodes/model.shop.new_orders`]: () => ({
      body: nodeDetail('model.shop.new_orders', { raw_code: 'select 1 as id', compiled_code: 'select 1 as id -- compiled' }),
    }),
  })
}

function renderDiff(url = '/projects/demo/diff') {
  return renderView(<DiffView />, { url, route: '/projects/:project/diff' })
}

afterEach(() => vi.unstubAllGlobals())

describe('DiffView', () => {
  it('compares the latest version with its previous one by default', async () => {
    const { requests } = stubDiffApi()
    renderDiff()
    expect(await screen.findByTestId('diff-summary')).toHaveTextContent('v2 → v3')
    expect(screen.getByTestId('version-from')).toHaveValue('2')
    expect(screen.getByTestId('version-to')).toHaveValue('3')
    const diffRequest = requests.find((r) => r.url.includes('/graph/diff'))
    expect(new URL(diffRequest!.url).search).toBe('?from=2&to=3')
    const summary = screen.getByTestId('diff-summary')
    expect(summary).toHaveTextContent('1 added')
    expect(summary).toHaveTextContent('1 removed')
    expect(summary).toHaveTextContent('1 renamed')
    expect(summary).toHaveTextContent('2 changed')
    expect(summary).toHaveTextContent('1 state:modified')
  })

  it('lists renames as old → new, and changes with their aspects and the state:modified flag as chips', async () => {
    stubDiffApi()
    renderDiff()
    const renamed = await screen.findByTestId('diff-renamed')
    expect(renamed).toHaveTextContent('model.shop.plan_tiers → model.shop.plan_tier_lookup')
    expect(within(screen.getByTestId('diff-added')).getByText('model.shop.new_orders')).toBeInTheDocument()
    expect(within(screen.getByTestId('diff-removed')).getByText('model.shop.legacy')).toBeInTheDocument()

    const changed = within(screen.getByTestId('diff-changed')).getAllByRole('button')
    expect(changed).toHaveLength(2)
    const chips = (button: HTMLElement) => [...button.querySelectorAll('.chip')].map((chip) => chip.textContent)
    expect(chips(changed[0]!)).toEqual(['body', 'description', 'state:modified'])
    expect(chips(changed[1]!)).toEqual(['checksum'])
  })

  it('filters the lists', async () => {
    stubDiffApi()
    renderDiff()
    await screen.findByTestId('diff-changed')
    await userEvent.type(screen.getByRole('searchbox', { name: 'Filter the changes' }), 'seed')
    const changed = screen.getByTestId('diff-changed')
    expect(changed).toHaveTextContent('1 of 2')
    expect(changed).toHaveTextContent('seed.shop.countries')
    expect(changed).not.toHaveTextContent('model.shop.customers')
    expect(screen.getByTestId('diff-renamed')).toHaveTextContent('No match.')
  })

  it("diffs a renamed node's code: its old id at `from` against its new id at `to`", async () => {
    const { requests } = stubDiffApi()
    renderDiff()
    await userEvent.click(await screen.findByRole('button', { name: /model\.shop\.plan_tiers → model\.shop\.plan_tier_lookup/ }))
    expect(await screen.findByTestId('sql-original')).toHaveTextContent('select tier -- v2')
    expect(screen.getByTestId('sql-modified')).toHaveTextContent('select tier, interval -- v3')
    const nodeUrls = requests.filter((r) => r.url.includes('/graph/nodes/')).map((r) => decodeURIComponent(new URL(r.url).pathname + new URL(r.url).search))
    expect(nodeUrls).toEqual(
      expect.arrayContaining([`${PROJECT}/graph/nodes/model.shop.plan_tiers?version=2`, `${PROJECT}/graph/nodes/model.shop.plan_tier_lookup?version=3`]),
    )
  })

  it('shows an added node against an empty left side, and switches to compiled code', async () => {
    stubDiffApi()
    renderDiff('/projects/demo/diff?from=2&to=3&node=model.shop.new_orders')
    expect(await screen.findByTestId('sql-modified')).toHaveTextContent('select 1 as id')
    expect(screen.getByTestId('sql-original')).toBeEmptyDOMElement()
    await userEvent.click(within(screen.getByTestId('diff-editor')).getByRole('tab', { name: 'Compiled SQL' }))
    expect(screen.getByTestId('sql-modified')).toHaveTextContent('select 1 as id -- compiled')
  })

  it('does not ask for a backwards diff', async () => {
    const { requests } = stubDiffApi()
    renderDiff('/projects/demo/diff?from=3&to=1')
    expect(await screen.findByText(/swap them/)).toBeInTheDocument()
    await waitFor(() => expect(requests.some((r) => r.url.includes('/graph/versions'))).toBe(true))
    expect(requests.some((r) => r.url.includes('/graph/diff'))).toBe(false)
  })
})
