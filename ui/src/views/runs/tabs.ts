// The tabs of a run's page; the chosen one is in the URL (?tab=log) so a link (or an e2e test) can open it.
export const RUN_TABS = [
  { id: 'timeline', label: 'Timeline' },
  { id: 'log', label: 'Log' },
  { id: 'plan', label: 'Plan' },
  { id: 'artifacts', label: 'Artifacts' },
] as const

export type RunTab = (typeof RUN_TABS)[number]['id']

export function readTab(params: URLSearchParams): RunTab {
  const asked = params.get('tab')
  return RUN_TABS.find((t) => t.id === asked)?.id ?? 'timeline'
}
