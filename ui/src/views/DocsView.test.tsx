import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { OutlineNode } from '@/api/client'
import { nodeDetail } from '@/test/fixtures'
import { renderView, stubApi } from '@/test/views'
import DocsView from './DocsView'

vi.mock('@/components/monaco', () => ({
  SqlViewer: ({ value }: { value: string }) => <pre data-testid="sql-viewer">{value}</pre>,
  SqlDiff: () => null,
}))

const PROJECT = '/api/tenants/default/projects/demo'
const HOSTILE = 'Line one.\n<img src=x onerror="window.__pwned = true"> <b>not bold</b>\n<script>window.__pwned = true</script>'
const TEST_ID = 'test.shop.not_null_customers_customer_id.abc'

function outlineNode(uniqueId: string, extra: Partial<OutlineNode> = {}): OutlineNode {
  const [resourceType = 'model', pkg = 'shop'] = uniqueId.split('.')
  return { unique_id: uniqueId, node_uuid: uniqueId, name: uniqueId.split('.')[2] ?? uniqueId, resource_type: resourceType, package_name: pkg, ...extra }
}

const OUTLINE = {
  graph_version: 3,
  edges: [],
  nodes: [
    outlineNode('model.shop.customers', { materialized: 'table', tags: ['marts'], path: 'marts/customers.sql' }),
    outlineNode('model.shop.stg_customers', { materialized: 'view' }),
    outlineNode('exposure.shop.dashboard'),
    outlineNode(TEST_ID),
  ],
}

const CUSTOMERS = nodeDetail('model.shop.customers', {
  lastStatus: 'success',
  node: {
    description: HOSTILE,
    materialized: 'table',
    tags: ['marts', 'nightly'],
    meta: { pii: false, steward: '<i>Ada</i>' },
    original_file_path: 'models/marts/customers.sql',
    relation_name: '"dev"."main"."customers"',
    access: 'protected',
    contract: { enforced: true },
    columns: [
      { name: 'customer_id', description: 'Primary key.', data_type: 'int' },
      { name: 'note', description: '<img src=y onerror="window.__pwned = true">' },
    ],
  },
  catalog: {
    unique_id: 'model.shop.customers',
    columns: [
      { name: 'customer_id', type: 'INTEGER', index: 1 },
      { name: 'note', type: 'VARCHAR', index: 2 },
    ],
  },
  owner: 'growth@example.com',
  parents: ['model.shop.stg_customers'],
  children: ['exposure.shop.dashboard', TEST_ID],
  tests: [TEST_ID],
  raw_code: "select * from {{ ref('stg_customers') }}",
})

function stubDocsApi() {
  return stubApi({
    [`GET ${PROJECT}/graph/outline`]: () => ({ body: OUTLINE }),
    [`GET ${PROJECT}/graph/nodes/model.shop.customers`]: () => ({ body: CUSTOMERS }),
    [`GET ${PROJECT}/graph`]: () => ({
      body: {
        graph_version: 3,
        edges: [],
        nodes: [
          CUSTOMERS.node,
          {
            node_uuid: 'uuid-test',
            valid_from: 1,
            last_status: 'fail',
            node: {
              unique_id: TEST_ID,
              name: 'not_null_customers_customer_id',
              resource_type: 'test',
              package_name: 'shop',
              column_name: 'customer_id',
              test_metadata: { name: 'not_null' },
            },
          },
        ],
      },
    }),
  })
}

function renderDocs(url: string) {
  return renderView(<DocsView />, { url, route: '/projects/:project/docs/*' })
}

afterEach(() => vi.unstubAllGlobals())

describe('DocsView: a node', () => {
  it('shows a hostile description as text, never as HTML', async () => {
    stubDocsApi()
    const { container } = renderDocs('/projects/demo/docs/model.shop.customers')
    expect(await screen.findByTestId('docs-title')).toHaveTextContent('customers')
    const description = screen.getByText(/Line one\./)
    // the markup is there as characters, line breaks included...
    expect(description.textContent).toBe(HOSTILE)
    expect(description).toHaveClass('docs-text') // white-space: pre-wrap keeps the line breaks
    // ...and nowhere as elements, neither from the description nor from column descriptions or meta
    expect(container.querySelector('img, script, b, i')).toBeNull()
    expect(screen.getByTestId('docs-columns')).toHaveTextContent('<img src=y onerror="window.__pwned = true">')
    expect(screen.getByText('<i>Ada</i>')).toBeInTheDocument()
    expect((window as { __pwned?: boolean }).__pwned).toBeUndefined()
  })

  it('shows the columns with catalog types, the tests with their last status, and the lineage as links', async () => {
    stubDocsApi()
    renderDocs('/projects/demo/docs/model.shop.customers')
    const columns = await screen.findByTestId('docs-columns')
    const rows = within(columns).getAllByRole('row').slice(1)
    expect(rows.map((row) => [...row.querySelectorAll('td')].map((td) => td.textContent))).toEqual([
      ['customer_id', 'INTEGER', 'Primary key.'],
      ['note', 'VARCHAR', '<img src=y onerror="window.__pwned = true">'],
    ])

    const tests = screen.getByTestId('docs-tests')
    expect(await within(tests).findByRole('link', { name: 'not_null' })).toHaveAttribute('href', `/projects/demo/docs/${TEST_ID}`)
    expect(tests).toHaveTextContent('fail')
    expect(tests).toHaveTextContent('customer_id')

    const lineage = screen.getByTestId('docs-lineage')
    expect(within(lineage).getByRole('link', { name: 'stg_customers' })).toHaveAttribute('href', '/projects/demo/docs/model.shop.stg_customers')
    expect(within(lineage).getByRole('link', { name: 'dashboard' })).toHaveAttribute('href', '/projects/demo/docs/exposure.shop.dashboard')
    // tests are listed under Tests, not as downstream nodes
    expect(within(lineage).queryByText(/not_null/)).toBeNull()
    expect(within(lineage).getByRole('link', { name: 'Open in graph' })).toHaveAttribute(
      'href',
      '/projects/demo/graph?focus=model.shop.customers',
    )
  })

  it('shows the properties and the raw SQL, and says when there is no compiled SQL', async () => {
    stubDocsApi()
    renderDocs('/projects/demo/docs/model.shop.customers')
    await screen.findByTestId('docs-title')
    expect(screen.getByText('growth@example.com')).toBeInTheDocument()
    expect(screen.getByText('"dev"."main"."customers"')).toBeInTheDocument()
    expect(screen.getByText('enforced')).toBeInTheDocument()
    const sql = screen.getByTestId('docs-sql')
    expect(within(sql).getByTestId('sql-viewer')).toHaveTextContent("select * from {{ ref('stg_customers') }}")
    await userEvent.click(within(sql).getByRole('tab', { name: 'Compiled SQL' }))
    expect(sql).toHaveTextContent('No compiled SQL')
  })

  it('says so when the node is not in the latest version', async () => {
    stubDocsApi()
    renderDocs('/projects/demo/docs/model.shop.gone')
    expect(await screen.findByText(/is not in the latest graph version/)).toBeInTheDocument()
  })
})

describe('DocsView: the index', () => {
  it('lists the documented nodes with links, searchable and filtered by type', async () => {
    stubDocsApi()
    renderDocs('/projects/demo/docs')
    const index = await screen.findByTestId('docs-index')
    expect(within(index).getByRole('link', { name: 'customers' })).toHaveAttribute('href', '/projects/demo/docs/model.shop.customers')
    expect(within(index).queryByText('not_null_customers_customer_id')).toBeNull() // tests only on demand

    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Resource type' }), 'exposure')
    expect(within(screen.getByTestId('docs-index')).getAllByRole('link').map((a) => a.textContent)).toEqual(['dashboard'])

    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Resource type' }), '')
    await userEvent.type(screen.getByRole('searchbox', { name: 'Search the docs' }), 'stg')
    expect(within(screen.getByTestId('docs-index')).getAllByRole('link').map((a) => a.textContent)).toEqual(['stg_customers'])
  })
})
