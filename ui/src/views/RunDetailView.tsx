// /runs/:runId — one run: its state and story at the top, the things one may do to it, and tabs for its node
// timeline, its live log, the plan it executed and the artifacts it stored. The tab is in the URL (?tab=log).
import { useState } from 'react'
import { Link, useParams, useSearchParams } from 'react-router'
import type { RunDetail } from '@/api/client'
import { FINAL_STATUSES, useRun } from '@/api/hooks'
import { paths } from '@/app/routes'
import { useMeContext, useTenant } from '@/app/tenant'
import { ErrorBox, Loading, Page, StatusBadge } from '@/components/common'
import { shortId } from '@/lib/format'
import { ArtifactsPanel } from './runs/ArtifactsPanel'
import { LogPanel } from './runs/LogPanel'
import { PlanPanel } from './runs/PlanPanel'
import { CANCEL_REASON_ID, CancelRunForm, DECISION_COMMENT_ID, DecisionForm, ReplanButton } from './runs/RunActions'
import { RunSummary } from './runs/RunSummary'
import { readTab, RUN_TABS, type RunTab } from './runs/tabs'
import { Timeline } from './runs/Timeline'
import { useRunPaletteActions } from './runs/useRunPaletteActions'
import './runs.css'

function Tabs({ current, onSelect }: { current: RunTab; onSelect: (tab: RunTab) => void }) {
  return (
    <div className="tabs" role="tablist" aria-label="Run details">
      {RUN_TABS.map((tab) => (
        <button
          key={tab.id}
          type="button"
          role="tab"
          id={`run-tab-${tab.id}`}
          aria-selected={current === tab.id}
          aria-controls={`run-panel-${tab.id}`}
          className={current === tab.id ? 'active' : undefined}
          onClick={() => onSelect(tab.id)}
          data-testid={`tab-${tab.id}`}
        >
          {tab.label}
        </button>
      ))}
    </div>
  )
}

function focusById(id: string) {
  // after the render that shows the field
  requestAnimationFrame(() => document.getElementById(id)?.focus())
}

function RunPage({ tenant, detail }: { tenant: string; detail: RunDetail }) {
  const me = useMeContext()
  const { run } = detail
  const [params, setParams] = useSearchParams()
  const tab = readTab(params)
  const [cancelOpen, setCancelOpen] = useState(false)
  // The log keeps streaming once opened, so flipping tabs does not read it again from the first line.
  const [logOpened, setLogOpened] = useState(tab === 'log')
  if (tab === 'log' && !logOpened) setLogOpened(true)

  const live = !FINAL_STATUSES.has(run.status)
  const awaiting = run.status === 'awaiting_approval'
  const canCancel = live && me.can_write && !run.cancel_requested_at
  const canDecide = awaiting && me.can_approve

  const showTab = (next: RunTab) =>
    setParams(
      (p) => {
        const updated = new URLSearchParams(p)
        if (next === 'timeline') updated.delete('tab')
        else updated.set('tab', next)
        return updated
      },
      { replace: true },
    )
  const openCancel = () => {
    setCancelOpen(true)
    focusById(CANCEL_REASON_ID)
  }
  useRunPaletteActions({
    showTab,
    cancel: canCancel ? openCancel : undefined,
    decide: canDecide ? () => focusById(DECISION_COMMENT_ID) : undefined,
  })

  return (
    <Page
      title={
        <span className="run-title">
          <Link to={paths.runs()} className="muted">
            Runs
          </Link>{' '}
          / Run <span className="mono" title={run.run_id}>{shortId(run.run_id)}</span>{' '}
          <span data-testid="run-status" data-status={run.status}>
            <StatusBadge status={run.status} />
          </span>
        </span>
      }
      actions={
        <>
          {awaiting && me.can_write && <ReplanButton tenant={tenant} run={run} />}
          {canCancel && !cancelOpen && (
            <button type="button" className="danger" onClick={openCancel} data-testid="cancel-run">
              Cancel run
            </button>
          )}
          {run.cancel_requested_at && live && <span className="muted">cancel requested…</span>}
        </>
      }
    >
      {cancelOpen && canCancel && <CancelRunForm tenant={tenant} run={run} onClose={() => setCancelOpen(false)} />}
      {canDecide && <DecisionForm key={run.plan_id ?? 'none'} tenant={tenant} run={run} approvals={detail.explain?.approvals} />}
      {awaiting && !me.can_approve && <p className="muted">This run waits for someone with the approver role.</p>}
      <RunSummary run={run} />
      <Tabs current={tab} onSelect={showTab} />
      <div role="tabpanel" id={`run-panel-${tab}`} aria-labelledby={`run-tab-${tab}`}>
        {tab === 'timeline' && <Timeline run={run} nodes={detail.nodes ?? []} />}
        {tab === 'plan' && <PlanPanel detail={detail} />}
        {tab === 'artifacts' && <ArtifactsPanel tenant={tenant} run={run} />}
      </div>
      {logOpened && (
        <div hidden={tab !== 'log'}>
          <LogPanel key={run.run_id} tenant={tenant} runId={run.run_id} live={live} expectedLines={run.log_lines} />
        </div>
      )}
    </Page>
  )
}

export default function RunDetailView() {
  const { runId = '' } = useParams()
  const tenant = useTenant()
  const detail = useRun(tenant, runId)
  if (detail.isPending) return <Loading what="Reading the run" />
  if (detail.isError)
    return (
      <Page title={<Link to={paths.runs()}>Runs</Link>}>
        <ErrorBox error={detail.error} title={`Could not read run ${runId}`} />
      </Page>
    )
  return <RunPage key={runId} tenant={tenant} detail={detail.data} />
}
