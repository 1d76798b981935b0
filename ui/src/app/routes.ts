// Every view's URL, in one place: the shell's navigation, the command palette and links all build them here.
export const paths = {
  dashboard: () => '/',
  graph: (project: string, focus?: string) =>
    `/projects/${encodeURIComponent(project)}/graph${focus ? `?focus=${encodeURIComponent(focus)}` : ''}`,
  plan: (project: string, select?: string) =>
    `/projects/${encodeURIComponent(project)}/plan${select ? `?select=${encodeURIComponent(select)}` : ''}`,
  runs: () => '/runs',
  run: (runId: string) => `/runs/${encodeURIComponent(runId)}`,
  artifacts: (project: string) => `/projects/${encodeURIComponent(project)}/artifacts`,
  diff: (project: string, from?: number, to?: number, node?: string) => {
    const query = new URLSearchParams()
    if (from !== undefined && to !== undefined) {
      query.set('from', String(from))
      query.set('to', String(to))
    }
    if (node) query.set('node', node)
    const text = query.toString()
    return `/projects/${encodeURIComponent(project)}/diff${text ? `?${text}` : ''}`
  },
  docs: (project: string, uniqueId?: string) =>
    `/projects/${encodeURIComponent(project)}/docs${uniqueId ? `/${encodeURIComponent(uniqueId)}` : ''}`,
}

export type ViewName = 'dashboard' | 'graph' | 'plan' | 'runs' | 'artifacts' | 'diff' | 'docs'

/** The navigation, in order: label, path builder, and the keys of its shortcut (g then the key). */
export const NAVIGATION: { view: ViewName; label: string; key: string; projectScoped: boolean }[] = [
  { view: 'dashboard', label: 'Dashboard', key: 'd', projectScoped: false },
  { view: 'graph', label: 'Graph', key: 'g', projectScoped: true },
  { view: 'plan', label: 'Execution plan', key: 'p', projectScoped: true },
  { view: 'runs', label: 'Runs', key: 'r', projectScoped: false },
  { view: 'artifacts', label: 'Artifacts', key: 'a', projectScoped: true },
  { view: 'diff', label: 'Diff', key: 'f', projectScoped: true },
  { view: 'docs', label: 'Docs', key: 'o', projectScoped: true },
]

export function pathOf(view: ViewName, project: string | null): string {
  switch (view) {
    case 'dashboard':
      return paths.dashboard()
    case 'runs':
      return paths.runs()
    default:
      return project ? paths[view](project) : paths.dashboard()
  }
}
