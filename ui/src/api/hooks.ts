// TanStack Query hooks over the API: one place that knows each route, its cache key and when to refresh.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import {
  api,
  unwrap,
  unwrapAs,
  type CanvasCommand,
  type CanvasView,
  type GraphOutline,
  type RunDetail,
  type RunSort,
  type RunView,
} from './client'

export const FINAL_STATUSES = new Set(['success', 'warning', 'failed', 'canceled', 'rejected'])

export const keys = {
  me: ['me'] as const,
  projects: (t: string) => ['projects', t] as const,
  environments: (t: string, p: string) => ['environments', t, p] as const,
  dashboard: (t: string) => ['dashboard', t] as const,
  outline: (t: string, p: string, v: number | null) => ['outline', t, p, v] as const,
  statuses: (t: string, p: string) => ['statuses', t, p] as const,
  node: (t: string, p: string, id: string, v: number | null) => ['node', t, p, id, v] as const,
  versions: (t: string, p: string) => ['versions', t, p] as const,
  diff: (t: string, p: string, from: number, to: number) => ['diff', t, p, from, to] as const,
  ingestions: (t: string, p: string) => ['ingestions', t, p] as const,
  runs: (t: string) => ['runs', t] as const,
  run: (t: string, id: string) => ['run', t, id] as const,
  canvas: (t: string, p: string, w: string) => ['canvas', t, p, w] as const,
}

export function useMe() {
  return useQuery({ queryKey: keys.me, queryFn: () => unwrap(api.GET('/api/me')), staleTime: 300_000 })
}

export function useProjects(tenant: string) {
  return useQuery({
    queryKey: keys.projects(tenant),
    enabled: tenant !== '',
    queryFn: () =>
      unwrap(api.GET('/api/tenants/{tenant_id}/projects', { params: { path: { tenant_id: tenant }, query: { status: 'active' } } })),
  })
}

export function useEnvironments(tenant: string, project: string | null) {
  return useQuery({
    queryKey: keys.environments(tenant, project ?? ''),
    enabled: project !== null && tenant !== '',
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/environments', {
          params: { path: { tenant_id: tenant, project_id: project ?? '' }, query: { status: 'active' } },
        }),
      ),
  })
}

export function useDashboard(tenant: string) {
  return useQuery({
    queryKey: keys.dashboard(tenant),
    queryFn: () => unwrap(api.GET('/api/tenants/{tenant_id}/dashboard', { params: { path: { tenant_id: tenant } } })),
    refetchInterval: 10_000,
  })
}

export function useOutline(tenant: string, project: string, version: number | null = null) {
  return useQuery({
    queryKey: keys.outline(tenant, project, version),
    enabled: tenant !== '' && project !== '',
    queryFn: () =>
      unwrapAs<GraphOutline>(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph/outline', {
          params: { path: { tenant_id: tenant, project_id: project }, query: version ? { version } : {} },
        }),
      ),
    staleTime: version ? Infinity : 15_000, // a version's outline never changes
  })
}

export function useStatuses(tenant: string, project: string) {
  return useQuery({
    queryKey: keys.statuses(tenant, project),
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph/statuses', {
          params: { path: { tenant_id: tenant, project_id: project } },
        }),
      ),
    refetchInterval: 15_000,
  })
}

export function useNode(tenant: string, project: string, uniqueId: string | null, version: number | null = null) {
  return useQuery({
    queryKey: keys.node(tenant, project, uniqueId ?? '', version),
    enabled: uniqueId !== null && uniqueId !== '',
    retry: false,
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph/nodes/{unique_id}', {
          params: {
            path: { tenant_id: tenant, project_id: project, unique_id: uniqueId ?? '' },
            query: version ? { version } : {},
          },
        }),
      ),
  })
}

export function useVersions(tenant: string, project: string) {
  return useQuery({
    queryKey: keys.versions(tenant, project),
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph/versions', {
          params: { path: { tenant_id: tenant, project_id: project } },
        }),
      ),
  })
}

export function useDiff(tenant: string, project: string, from: number | null, to: number | null) {
  return useQuery({
    queryKey: keys.diff(tenant, project, from ?? -1, to ?? -1),
    enabled: from !== null && to !== null,
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/graph/diff', {
          params: { path: { tenant_id: tenant, project_id: project }, query: { from: from ?? 0, to: to ?? 1 } },
        }),
      ),
    staleTime: Infinity, // versions are immutable
  })
}

export function useIngestions(tenant: string, project: string) {
  return useQuery({
    queryKey: keys.ingestions(tenant, project),
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/ingestions', {
          params: { path: { tenant_id: tenant, project_id: project } },
        }),
      ),
  })
}

export type RunFilters = {
  project?: string
  environment?: string
  status?: string
  actor?: string
  since?: string
}

export function useRuns(
  tenant: string,
  filters: RunFilters,
  sort: RunSort,
  order: 'asc' | 'desc',
  cursor: string | null,
  limit = 25,
) {
  return useQuery({
    queryKey: [...keys.runs(tenant), filters, sort, order, cursor, limit],
    queryFn: () =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/runs', {
          params: {
            path: { tenant_id: tenant },
            query: {
              ...Object.fromEntries(Object.entries(filters).filter(([, v]) => v)),
              sort,
              order,
              limit,
              ...(cursor ? { cursor } : {}),
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
    refetchInterval: 5_000,
  })
}

export function useRun(tenant: string, runId: string) {
  return useQuery({
    queryKey: keys.run(tenant, runId),
    queryFn: (): Promise<RunDetail> =>
      unwrap(
        api.GET('/api/tenants/{tenant_id}/runs/{run_id}', { params: { path: { tenant_id: tenant, run_id: runId } } }),
      ),
    // poll while the run can still change; stop once it has ended
    refetchInterval: (query) => (query.state.data && FINAL_STATUSES.has(query.state.data.run.status) ? false : 1_500),
  })
}

/** After a run changed: refresh every view that shows runs. */
function useRunsChanged() {
  const client = useQueryClient()
  return (tenant: string, run?: RunView) => {
    void client.invalidateQueries({ queryKey: keys.runs(tenant) })
    void client.invalidateQueries({ queryKey: keys.dashboard(tenant) })
    if (run) void client.invalidateQueries({ queryKey: keys.run(tenant, run.run_id) })
  }
}

export type Decision = { runId: string; planId?: string | null; comment: string }

export function useRunActions(tenant: string) {
  const changed = useRunsChanged()
  const path = (runId: string) => ({ path: { tenant_id: tenant, run_id: runId } })
  return {
    approve: useMutation({
      mutationFn: (d: Decision) =>
        unwrap(
          api.POST('/api/tenants/{tenant_id}/runs/{run_id}/approve', {
            params: path(d.runId),
            body: { comment: d.comment, ...(d.planId ? { plan_id: d.planId } : {}) },
          }),
        ),
      onSuccess: (run) => changed(tenant, run),
    }),
    reject: useMutation({
      mutationFn: (d: Decision) =>
        unwrap(
          api.POST('/api/tenants/{tenant_id}/runs/{run_id}/reject', {
            params: path(d.runId),
            body: { comment: d.comment, ...(d.planId ? { plan_id: d.planId } : {}) },
          }),
        ),
      onSuccess: (run) => changed(tenant, run),
    }),
    cancel: useMutation({
      mutationFn: (d: { runId: string; reason: string }) =>
        unwrap(api.POST('/api/tenants/{tenant_id}/runs/{run_id}/cancel', { params: path(d.runId), body: { reason: d.reason } })),
      onSuccess: (run) => changed(tenant, run),
    }),
    replan: useMutation({
      mutationFn: (runId: string) => unwrap(api.POST('/api/tenants/{tenant_id}/runs/{run_id}/replan', { params: path(runId) })),
      onSuccess: (run) => changed(tenant, run),
    }),
  }
}

export type RunRequest = {
  environment_id: string
  select?: string | null
  exclude?: string | null
  selector?: string | null
  full_refresh?: boolean
}

export function usePlanning(tenant: string, project: string) {
  const changed = useRunsChanged()
  const path = { path: { tenant_id: tenant, project_id: project } }
  return {
    preview: useMutation({
      mutationFn: (body: RunRequest) =>
        unwrap(api.POST('/api/tenants/{tenant_id}/projects/{project_id}/plans', { params: path, body })),
    }),
    request: useMutation({
      mutationFn: (body: RunRequest) =>
        unwrap(api.POST('/api/tenants/{tenant_id}/projects/{project_id}/runs', { params: path, body })),
      onSuccess: (run) => changed(tenant, run),
    }),
  }
}

export function useIngest(tenant: string, project: string) {
  const client = useQueryClient()
  return useMutation({
    mutationFn: async (files: Partial<Record<'manifest' | 'catalog' | 'run_results' | 'sources', File>>) => {
      const form = new FormData()
      for (const [kind, file] of Object.entries(files)) if (file) form.append(kind, file, file.name)
      return unwrap(
        api.POST('/api/tenants/{tenant_id}/projects/{project_id}/ingestions', {
          params: { path: { tenant_id: tenant, project_id: project } },
          body: form as never,
          bodySerializer: (body: unknown) => body as FormData,
        }),
      )
    },
    onSuccess: () => {
      for (const key of ['outline', 'statuses', 'versions', 'ingestions', 'dashboard', 'node', 'diff'])
        void client.invalidateQueries({ queryKey: [key] })
    },
  })
}

export function useCanvas(tenant: string, project: string, workspace: 'mine' | 'shared') {
  return useQuery({
    queryKey: keys.canvas(tenant, project, workspace),
    queryFn: () =>
      unwrapAs<CanvasView>(
        api.GET('/api/tenants/{tenant_id}/projects/{project_id}/canvas', {
          params: { path: { tenant_id: tenant, project_id: project }, query: { workspace } },
        }),
      ),
    staleTime: Infinity, // this tab's own edits keep it current (setQueryData after each command)
  })
}

export async function sendCanvasCommand(
  tenant: string,
  project: string,
  workspace: 'mine' | 'shared',
  command: CanvasCommand,
): Promise<CanvasView> {
  return unwrapAs<CanvasView>(
    api.POST('/api/tenants/{tenant_id}/projects/{project_id}/canvas/commands', {
      params: { path: { tenant_id: tenant, project_id: project }, query: { workspace } },
      body: command,
    }),
  )
}
