import { describe, expect, it } from 'vitest'
import type { OutlineNode } from '@/api/client'
import { mergeColumns, metaText, searchDocs } from './docsModel'

describe('mergeColumns', () => {
  const declared = [
    { name: 'customer_id', description: 'Primary key.', data_type: 'int' },
    { name: 'email', description: 'Where we write to.' },
    { name: 'dropped_last_week', description: 'Gone from the table.', data_type: 'text' },
  ]
  const catalog = [
    { name: 'EMAIL', type: 'VARCHAR', index: 2 },
    { name: 'CUSTOMER_ID', type: 'INTEGER', index: 1, comment: 'warehouse comment' },
    { name: 'COUNTRY', type: 'VARCHAR', index: 3, comment: 'ISO code' },
  ]

  it("follows the warehouse's column order, then documented columns it does not have", () => {
    expect(mergeColumns(declared, catalog).map((c) => c.name)).toEqual([
      'customer_id',
      'email',
      'COUNTRY',
      'dropped_last_week',
    ])
  })

  it("prefers the catalog's type, the documented name and description; falls back to the other side", () => {
    const [id, email, country, dropped] = mergeColumns(declared, catalog)
    expect(id).toEqual({ name: 'customer_id', type: 'INTEGER', description: 'Primary key.', declared: true, inCatalog: true })
    expect(email).toMatchObject({ type: 'VARCHAR', description: 'Where we write to.' })
    expect(country).toEqual({ name: 'COUNTRY', type: 'VARCHAR', description: 'ISO code', declared: false, inCatalog: true })
    expect(dropped).toEqual({ name: 'dropped_last_week', type: 'text', description: 'Gone from the table.', declared: true, inCatalog: false })
  })

  it('uses the declared data_type without a catalog, and says so when nothing knows the type', () => {
    expect(mergeColumns([{ name: 'a', data_type: 'date' }, { name: 'b' }], []).map((c) => c.type)).toEqual(['date', null])
  })
})

describe('searchDocs', () => {
  const node = (uniqueId: string, extra: Partial<OutlineNode> = {}): OutlineNode => {
    const [resourceType = 'model', pkg = 'shop'] = uniqueId.split('.')
    return { unique_id: uniqueId, node_uuid: uniqueId, name: uniqueId.split('.').pop() ?? uniqueId, resource_type: resourceType, package_name: pkg, ...extra }
  }
  const nodes = [
    node('model.shop.orders', { path: 'marts/orders.sql', tags: ['finance'] }),
    node('test.shop.not_null_orders_id'),
    node('source.shop.raw.customers'),
    node('model.shop.customers'),
  ]

  it('lists everything but tests by default, by type then name', () => {
    expect(searchDocs(nodes, '', '').map((n) => n.unique_id)).toEqual([
      'model.shop.customers',
      'model.shop.orders',
      'source.shop.raw.customers',
    ])
  })

  it('filters by type and by name, path or tag', () => {
    expect(searchDocs(nodes, 'test', '').map((n) => n.name)).toEqual(['not_null_orders_id'])
    expect(searchDocs(nodes, '', 'FINANCE').map((n) => n.name)).toEqual(['orders'])
    expect(searchDocs(nodes, 'source', 'customers').map((n) => n.unique_id)).toEqual(['source.shop.raw.customers'])
  })
})

describe('metaText', () => {
  it('shows strings as they are and other values as JSON', () => {
    expect(metaText('growth@example.com')).toBe('growth@example.com')
    expect(metaText({ pii: false })).toBe('{"pii":false}')
    expect(metaText(null)).toBe('null')
  })
})
