// The tests attached to one node, with their kind, column and last status, in one request: the graph route with
// the node as focus and one level down returns the node's children (its tests among them) with their statuses.
import { useQuery } from '@tanstack/react-query'
import { api, unwrap, type Schemas } from './client'

export type NodeTest = {
  uniqueId: string
  name: string
  resourceType: string
  /** The generic test's name (not_null, unique, relationships...), or null for a singular or unit test. */
  testName: string | null
  column: string | null
  lastStatus: string | null
}

/** The children of a node that are among `testIds` (what /graph/nodes/{id} listed as its tests). */
export function testsOf(page: Schemas['GraphPage'], testIds: readonly string[]): NodeTest[] {
  const wanted = new Set(testIds)
  return page.nodes
    .filter((view) => wanted.has(view.node.unique_id))
    .map((view) => ({
      uniqueId: view.node.unique_id,
      name: view.node.name,
      resourceType: view.node.resource_type,
      testName: view.node.test_metadata?.name ?? null,
      column: view.node.column_name ?? null,
      lastStatus: view.last_status ?? null,
    }))
    .sort((a, b) => (a.column ?? '').localeCompare(b.column ?? '') || a.name.localeCompare(b.name))
}

export function useNodeTests(tenant: string, project: string, uniqueId: string, testIds: readonly string[] | undefined) {
  return useQuery({
    // under 'statuses' too, so whatever refreshes statuses (an ingestion, a run) refreshes these
    queryKey: ['statuses', tenant, project, 'tests-of', uniqueId],
    enabled: testIds !== undefined && testIds.length > 0,
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph', {
          params: {
            path: { tenant_id: tenant, project_id: project },
            query: { focus: uniqueId, up: 0, down: 1, limit: 5000 },
          },
        }),
      ),
    select: (page) => testsOf(page, testIds ?? []),
    refetchInterval: 15_000,
  })
}
