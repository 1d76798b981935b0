// The Docs view's logic, apart from React: a node's columns (as documented and as the warehouse has them), the
// list of documented nodes, and the readable form of meta values.
import type { OutlineNode, Schemas } from '@/api/client'

type DeclaredColumn = Schemas['Column']
type CatalogColumn = Schemas['CatalogColumn']

export type DocColumn = {
  name: string
  /** The warehouse's type (catalog) when known, else the declared data_type; null when neither says. */
  type: string | null
  description: string
  /** Documented in YAML. */
  declared: boolean
  /** Present in the warehouse relation (catalog.json). */
  inCatalog: boolean
}

/**
 * Declared columns merged with the catalog's, matched case-insensitively (warehouses such as Snowflake report
 * `CUSTOMER_ID` for a documented `customer_id`). The warehouse's column order comes first (that is the table),
 * then documented columns the warehouse does not have. The documented name and description win; the catalog's
 * type wins, as it is what the relation really holds.
 */
export function mergeColumns(declared: DeclaredColumn[], catalog: CatalogColumn[]): DocColumn[] {
  const byName = new Map(declared.map((c) => [c.name.toLowerCase(), c]))
  const ordered = [...catalog].sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity))
  const seen = new Set<string>()
  const merged: DocColumn[] = ordered.map((column) => {
    const key = column.name.toLowerCase()
    seen.add(key)
    const doc = byName.get(key)
    return {
      name: doc?.name ?? column.name,
      type: column.type || doc?.data_type || null,
      description: doc?.description || column.comment || '',
      declared: doc !== undefined,
      inCatalog: true,
    }
  })
  for (const doc of declared) {
    if (seen.has(doc.name.toLowerCase())) continue
    merged.push({ name: doc.name, type: doc.data_type || null, description: doc.description ?? '', declared: true, inCatalog: false })
  }
  return merged
}

/** Resource types that are documentation of their own; tests are shown on the node they test. */
export const TEST_TYPES = new Set(['test', 'unit_test'])

/** The docs index: nodes of a type ('' = all but tests) whose name, id, path or tags contain the query. */
export function searchDocs(nodes: OutlineNode[], type: string, query: string): OutlineNode[] {
  const needle = query.trim().toLowerCase()
  return nodes
    .filter((n) => (type ? n.resource_type === type : !TEST_TYPES.has(n.resource_type)))
    .filter(
      (n) =>
        !needle ||
        [n.name, n.unique_id, n.path ?? '', ...(n.tags ?? [])].some((text) => text.toLowerCase().includes(needle)),
    )
    .sort((a, b) => a.resource_type.localeCompare(b.resource_type) || a.name.localeCompare(b.name))
}

/** A meta value as text: strings as they are, anything else as compact JSON. Never markup. */
export function metaText(value: unknown): string {
  if (typeof value === 'string') return value
  return JSON.stringify(value) ?? String(value)
}
