// The command palette (Ctrl+K / ⌘K): every view by name or by its shortcut (g then a key), the projects, and, in
// a project, its nodes (open the docs, focus the graph). Views register their own contextual actions.
import {
  KBarAnimator,
  KBarPortal,
  KBarPositioner,
  KBarProvider,
  KBarResults,
  KBarSearch,
  useKBar,
  useMatches,
  useRegisterActions,
  type Action,
} from 'kbar'
import type { ReactNode } from 'react'
import { useMemo } from 'react'
import { useNavigate } from 'react-router'
import { useOutline, useProjects } from '@/api/hooks'
import { NAVIGATION, pathOf, paths } from './routes'

function Results() {
  const { results } = useMatches()
  return (
    <KBarResults
      items={results}
      onRender={({ item, active }) =>
        typeof item === 'string' ? (
          <div className="kbar-section">{item}</div>
        ) : (
          <div className={`kbar-item${active ? ' active' : ''}`} data-testid="kbar-item">
            <span>{item.name}</span>
            {item.subtitle && <span className="muted">{item.subtitle}</span>}
            {item.shortcut?.length ? <kbd>{item.shortcut.join(' ')}</kbd> : null}
          </div>
        )
      }
    />
  )
}

/** Actions that depend on the tenant and the current project (registered once both are known). */
export function PaletteActions({ tenant, project, onProject }: { tenant: string; project: string | null; onProject: (p: string) => void }) {
  const navigate = useNavigate()
  const projects = useProjects(tenant)
  const outline = useOutline(tenant, project ?? '', null)

  const views = useMemo<Action[]>(
    () =>
      NAVIGATION.map((nav) => ({
        id: `view-${nav.view}`,
        name: `Go to ${nav.label}`,
        section: 'Views',
        shortcut: ['g', nav.key],
        keywords: nav.view,
        perform: () => navigate(pathOf(nav.view, project)),
      })),
    [navigate, project],
  )
  useRegisterActions(views, [views])

  const projectActions = useMemo<Action[]>(
    () =>
      (projects.data?.items ?? []).map((p) => ({
        id: `project-${p.project_id}`,
        name: `Switch to project ${p.name}`,
        subtitle: p.project_id,
        section: 'Projects',
        perform: () => {
          onProject(p.project_id)
          navigate(paths.graph(p.project_id))
        },
      })),
    [projects.data, navigate, onProject],
  )
  useRegisterActions(projectActions, [projectActions])

  // Nodes are offered for what is typed (at most 30), not registered all at once: kbar indexes every action it
  // holds, and the 4,000 nodes of a large project made each page load a second slower.
  const { search } = useKBar((state) => ({ search: state.searchQuery }))
  const nodeActions = useMemo<Action[]>(() => {
    const text = search.trim().toLowerCase()
    if (!project || !outline.data || text.length < 2) return []
    const found: Action[] = []
    for (const n of outline.data.nodes) {
      if (n.resource_type === 'test' || n.resource_type === 'unit_test') continue
      if (!n.unique_id.toLowerCase().includes(text)) continue
      found.push({
        id: `node-${n.unique_id}`,
        name: n.name,
        subtitle: n.unique_id,
        keywords: n.unique_id,
        section: 'Nodes',
        perform: () => navigate(paths.docs(project, n.unique_id)),
      })
      if (found.length === 30) break
    }
    return found
  }, [outline.data, project, navigate, search])
  useRegisterActions(nodeActions, [nodeActions])
  return null
}

export function Palette({ children }: { children: ReactNode }) {
  return (
    <KBarProvider options={{ enableHistory: false, disableScrollbarManagement: true }}>
      <KBarPortal>
        <KBarPositioner className="kbar-positioner">
          <KBarAnimator className="kbar">
            <KBarSearch className="kbar-search" data-testid="kbar-search" defaultPlaceholder="Type a command or a node name…" />
            <Results />
          </KBarAnimator>
        </KBarPositioner>
      </KBarPortal>
      {children}
    </KBarProvider>
  )
}
