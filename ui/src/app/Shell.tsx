// The frame around every view: navigation, the project switcher, who is signed in, toasts; and the routes.
import { useKBar } from 'kbar'
import { lazy, Suspense, useEffect, useState } from 'react'
import { NavLink, Navigate, Route, Routes, useLocation, useNavigate, useParams } from 'react-router'
import { useMe, useProjects } from '@/api/hooks'
import { ErrorBox, Loading } from '@/components/common'
import { bus, type BusEvents } from '@/lib/bus'
import { useSession } from '@/state/session'
import { PaletteActions } from './Palette'
import { NAVIGATION, pathOf } from './routes'
import { MeContext } from './tenant'

const Dashboard = lazy(() => import('@/views/Dashboard'))
const GraphWorkspace = lazy(() => import('@/views/GraphWorkspace'))
const PlanView = lazy(() => import('@/views/PlanView'))
const RunsView = lazy(() => import('@/views/RunsView'))
const RunDetailView = lazy(() => import('@/views/RunDetailView'))
const ArtifactsView = lazy(() => import('@/views/ArtifactsView'))
const DiffView = lazy(() => import('@/views/DiffView'))
const DocsView = lazy(() => import('@/views/DocsView'))

/** Keeps the session's project in step with the URL of a project view. */
function ProjectRoute({ children }: { children: React.ReactNode }) {
  const { project } = useParams()
  const setProject = useSession((s) => s.setProject)
  useEffect(() => {
    if (project) setProject(project)
  }, [project, setProject])
  return <>{children}</>
}

function Toasts() {
  const [items, setItems] = useState<(BusEvents['toast'] & { id: number })[]>([])
  useEffect(() => {
    let n = 0
    const add = (toast: BusEvents['toast']) => {
      const id = ++n
      setItems((all) => [...all.slice(-3), { ...toast, id }])
      setTimeout(() => setItems((all) => all.filter((t) => t.id !== id)), toast.kind === 'error' ? 8000 : 4000)
    }
    bus.on('toast', add)
    return () => bus.off('toast', add)
  }, [])
  return (
    <div className="toasts" aria-live="polite">
      {items.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          {t.text}
        </div>
      ))}
    </div>
  )
}

export function Shell() {
  const me = useMe()
  const { query } = useKBar()
  const navigate = useNavigate()
  const location = useLocation()
  const { project, setProject } = useSession()
  const tenant = me.data?.tenant_id ?? ''
  const projects = useProjects(tenant)
  const known = projects.data?.items ?? []
  const current = known.find((p) => p.project_id === project)?.project_id ?? known[0]?.project_id ?? null

  if (me.isPending) return <Loading what="Connecting to Lockgate" />
  if (me.isError) return <ErrorBox error={me.error} title="Lockgate could not tell who you are" />

  return (
    <MeContext.Provider value={me.data}>
      <PaletteActions tenant={tenant} project={current} onProject={setProject} />
      <div className="shell">
        <nav className="sidebar" aria-label="Views">
          <div className="brand">Lockgate</div>
          <label className="project-picker">
            <span className="muted">Project</span>
            <select
              value={current ?? ''}
              onChange={(e) => {
                setProject(e.target.value)
                const section = location.pathname.split('/')[3]
                navigate(section ? `/projects/${e.target.value}/${section}` : pathOf('graph', e.target.value))
              }}
              aria-label="Project"
            >
              {known.map((p) => (
                <option key={p.project_id} value={p.project_id}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
          <ul>
            {NAVIGATION.map((nav) => (
              <li key={nav.view}>
                <NavLink to={pathOf(nav.view, current)} end={nav.view === 'dashboard'} title={`g ${nav.key}`}>
                  {nav.label}
                </NavLink>
              </li>
            ))}
          </ul>
          <button type="button" className="palette-button" onClick={() => query.toggle()}>
            Command palette <kbd>Ctrl K</kbd>
          </button>
          <div className="whoami" title={me.data.roles.join(', ')}>
            {me.data.display_name}
            <span className="muted"> · {me.data.tenant_id}</span>
          </div>
        </nav>
        <main className="main">
          <Suspense fallback={<Loading />}>
            <Routes>
              <Route index element={<Dashboard />} />
              <Route path="runs" element={<RunsView />} />
              <Route path="runs/:runId" element={<RunDetailView />} />
              <Route path="projects/:project/graph" element={<ProjectRoute><GraphWorkspace /></ProjectRoute>} />
              <Route path="projects/:project/plan" element={<ProjectRoute><PlanView /></ProjectRoute>} />
              <Route path="projects/:project/artifacts" element={<ProjectRoute><ArtifactsView /></ProjectRoute>} />
              <Route path="projects/:project/diff" element={<ProjectRoute><DiffView /></ProjectRoute>} />
              <Route path="projects/:project/docs/*" element={<ProjectRoute><DocsView /></ProjectRoute>} />
              <Route path="*" element={<Navigate to="/" replace />} />
            </Routes>
          </Suspense>
        </main>
      </div>
      <Toasts />
    </MeContext.Provider>
  )
}
