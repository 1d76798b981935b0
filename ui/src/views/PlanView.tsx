// The execution plan: build the plan a run would get now (what runs, what is skipped or partial, why, what it
// will cost, who must approve), see it on the graph and in a table, then request the run and, where approval is
// needed, approve or reject it here with a comment.
import { zodResolver } from '@hookform/resolvers/zod'
import { useRegisterActions } from 'kbar'
import { useMemo, useState } from 'react'
import { useForm } from 'react-hook-form'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router'
import { z } from 'zod'
import { errorText, type ExecutionPlan, type PlanPreview, type RunView } from '@/api/client'
import { useEnvironments, useOutline, usePlanning, useRun, useRunActions, useStatuses } from '@/api/hooks'
import { paths } from '@/app/routes'
import { useMeContext, useTenant } from '@/app/tenant'
import { Empty, ErrorBox, Page, StatusBadge } from '@/components/common'
import { PlanItems } from '@/components/PlanItems'
import { GraphCanvas, type PlanMarks } from '@/graph/GraphCanvas'
import { buildGraph } from '@/graph/model'
import { money, seconds } from '@/lib/format'

const NO_STATUSES: Readonly<Record<string, string>> = {}

export const planFormSchema = z.object({
  environment_id: z.string().min(1, { error: 'Choose an environment' }),
  select: z.string().trim().max(4000, { error: 'At most 4000 characters' }),
  exclude: z.string().trim().max(4000, { error: 'At most 4000 characters' }),
  full_refresh: z.boolean(),
})
export type PlanForm = z.infer<typeof planFormSchema>

export const decisionSchema = z.object({
  comment: z.string().trim().max(2000, { error: 'At most 2000 characters' }),
})

export function requestOf(form: PlanForm) {
  return {
    environment_id: form.environment_id,
    select: form.select || null,
    exclude: form.exclude || null,
    full_refresh: form.full_refresh,
  }
}

function Totals({ preview }: { preview: PlanPreview }) {
  const { summary } = preview.explain
  return (
    <div className="cards" data-testid="plan-totals">
      <div className="card">
        <h2>Nodes</h2>
        <div className="row">
          <span className="action RUN">{summary.run} run</span>
          <span className="action PARTIAL">{summary.partial} partial</span>
          <span className="action SKIP">{summary.skip} skipped</span>
        </div>
        {summary.not_executable > 0 && <p className="muted small">{summary.not_executable} selected node(s) that dbt does not execute</p>}
      </div>
      <div className="card">
        <h2>Estimate</h2>
        <div>
          ~{seconds(summary.estimated_seconds)} of work, ~{seconds(summary.estimated_duration_seconds)} wall clock
        </div>
        <div>{summary.estimated_cost == null ? <span className="muted">not priced</span> : money(summary.estimated_cost, summary.currency)}</div>
      </div>
      <div className="card" data-testid="plan-approvals">
        <h2>Approval</h2>
        {preview.explain.approvals?.length ? (
          <ul className="plain stack">
            {preview.explain.approvals.map((a, i) => (
              <li key={i}>
                <strong>{a.role}</strong>: {a.message} <span className="muted small">({a.rule_id})</span>
              </li>
            ))}
          </ul>
        ) : (
          <span>No approval required: the run starts at once.</span>
        )}
      </div>
    </div>
  )
}

function PlanGraph({ tenant, project, plan }: { tenant: string; project: string; plan: ExecutionPlan }) {
  const outline = useOutline(tenant, project, plan.inputs.graph_version)
  const statuses = useStatuses(tenant, project)
  const marks: PlanMarks = useMemo(() => new Map((plan.items ?? []).map((i) => [i.unique_id, i.action])), [plan])
  const graph = useMemo(
    () =>
      outline.data
        ? buildGraph({
            nodes: outline.data.nodes,
            edges: outline.data.edges,
            hiddenTypes: new Set(),
            only: new Set(marks.keys()),
            grouping: 'none',
            userGroups: [],
            collapsed: new Set(),
          })
        : null,
    [outline.data, marks],
  )
  if (!graph || !outline.data) return null
  return (
    <div className="plan-graph">
      <GraphCanvas tenant={tenant} project={project} graphVersion={outline.data.graph_version} graph={graph} statuses={statuses.data?.statuses ?? NO_STATUSES} plan={marks} />
    </div>
  )
}

function Decide({ tenant, run }: { tenant: string; run: RunView }) {
  const me = useMeContext()
  const actions = useRunActions(tenant)
  const form = useForm<z.infer<typeof decisionSchema>>({ resolver: zodResolver(decisionSchema), defaultValues: { comment: '' } })
  const [error, setError] = useState<unknown>(null)
  if (!me.can_approve) return <p className="muted">Someone with the approver role must approve this run.</p>
  const decide = (approve: boolean) =>
    form.handleSubmit(async ({ comment }) => {
      if (!approve && comment === '') {
        form.setError('comment', { message: 'Say why you reject the plan' })
        return
      }
      setError(null)
      try {
        const args = { runId: run.run_id, planId: run.plan_id, comment }
        await (approve ? actions.approve.mutateAsync(args) : actions.reject.mutateAsync(args))
      } catch (e) {
        setError(e)
      }
    })
  return (
    <form className="stack" data-testid="decision-form" onSubmit={(e) => e.preventDefault()}>
      <label className="form-row">
        <span>Comment (required to reject)</span>
        <textarea {...form.register('comment')} rows={2} data-testid="decision-comment" />
      </label>
      {form.formState.errors.comment && <span className="field-error">{form.formState.errors.comment.message}</span>}
      <div className="row">
        <button type="button" className="primary" onClick={decide(true)} data-testid="approve-plan" disabled={actions.approve.isPending}>
          Approve
        </button>
        <button type="button" className="danger" onClick={decide(false)} data-testid="reject-plan" disabled={actions.reject.isPending}>
          Reject
        </button>
      </div>
      {error !== null && <ErrorBox error={error} title="The decision was not recorded" />}
    </form>
  )
}

function Requested({ tenant, runId }: { tenant: string; runId: string }) {
  const run = useRun(tenant, runId)
  if (!run.data) return null
  const view = run.data.run
  return (
    <div className="card" data-testid="requested-run">
      <div className="row">
        <h2>Run {runId.slice(0, 8)}</h2>
        <StatusBadge status={view.status} />
        <Link to={`${paths.run(runId)}?tab=log`} data-testid="open-run">
          Follow the run
        </Link>
      </div>
      {view.message && <p className="muted">{view.message}</p>}
      {view.status === 'awaiting_approval' && <Decide tenant={tenant} run={view} />}
      {view.status === 'rejected' && <p>Rejected by {view.decided_by}: {view.comment}</p>}
    </div>
  )
}

export default function PlanView() {
  const tenant = useTenant()
  const me = useMeContext()
  const { project = '' } = useParams()
  const [params] = useSearchParams()
  const navigate = useNavigate()
  const environments = useEnvironments(tenant, project)
  const planning = usePlanning(tenant, project)
  const [preview, setPreview] = useState<PlanPreview | null>(null)
  const [runId, setRunId] = useState<string | null>(null)
  const [show, setShow] = useState<'table' | 'graph'>('table')
  const envs = environments.data?.items ?? []
  const form = useForm<PlanForm>({
    resolver: zodResolver(planFormSchema),
    values: {
      environment_id: params.get('env') ?? envs[0]?.environment_id ?? '',
      select: params.get('select') ?? '',
      exclude: params.get('exclude') ?? '',
      full_refresh: params.get('full_refresh') === 'true',
    },
    resetOptions: { keepDirtyValues: true },
  })

  const build = form.handleSubmit(async (values) => {
    setRunId(null)
    setPreview(await planning.preview.mutateAsync(requestOf(values)))
  })
  const request = form.handleSubmit(async (values) => {
    const run = await planning.request.mutateAsync(requestOf(values))
    setRunId(run.run_id)
  })
  useRegisterActions(
    [
      { id: 'plan-build', name: 'Build the plan', section: 'Plan', perform: () => void build() },
      { id: 'plan-runs', name: 'Open the runs list', section: 'Plan', perform: () => navigate(paths.runs()) },
    ],
    [build],
  )

  const failure = planning.preview.error ?? planning.request.error
  return (
    <Page title="Execution plan" wide>
      <form className="toolbar plan-form" onSubmit={build} data-testid="plan-form">
        <label className="form-row">
          <span>Environment</span>
          <select {...form.register('environment_id')} data-testid="plan-env">
            {envs.map((e) => (
              <option key={e.environment_id} value={e.environment_id}>
                {e.name} ({e.environment_id}{e.production ? ', production' : ''})
              </option>
            ))}
          </select>
        </label>
        <label className="form-row grow">
          <span>Select (dbt syntax)</span>
          <input {...form.register('select')} className="mono" placeholder="* or +orders tag:daily state:modified+" data-testid="plan-select" />
        </label>
        <label className="form-row">
          <span>Exclude</span>
          <input {...form.register('exclude')} className="mono" data-testid="plan-exclude" />
        </label>
        <label className="row small">
          <input type="checkbox" {...form.register('full_refresh')} data-testid="plan-full-refresh" /> full refresh
        </label>
        <button type="submit" disabled={planning.preview.isPending} data-testid="build-plan">
          Build plan
        </button>
        <button type="button" className="primary" onClick={request} disabled={!me.can_write || planning.request.isPending} data-testid="request-run" title={me.can_write ? '' : 'Requesting a run needs the admin role'}>
          Request run
        </button>
        {Object.values(form.formState.errors).map((e) => (
          <span key={String(e?.message)} className="field-error">
            {String(e?.message)}
          </span>
        ))}
      </form>
      {failure && <ErrorBox error={failure} title={errorText(failure).includes('selection') ? 'The selection is not valid' : 'No plan'} />}
      {runId && <Requested tenant={tenant} runId={runId} />}
      {preview ? (
        <div className="stack" data-testid="plan-preview">
          <p data-testid="plan-headline">
            <strong>{preview.explain.headline}</strong>{' '}
            <span className="muted small mono" title={preview.plan.plan_hash}>
              plan {preview.plan.plan_hash?.slice(0, 12)} · graph v{preview.plan.inputs.graph_version}
              {preview.plan.inputs.state_reference != null && ` against v${preview.plan.inputs.state_reference}`}
            </span>
          </p>
          <Totals preview={preview} />
          <div className="tabs">
            <button type="button" className={show === 'table' ? 'active' : ''} onClick={() => setShow('table')}>
              Table
            </button>
            <button type="button" className={show === 'graph' ? 'active' : ''} onClick={() => setShow('graph')} data-testid="plan-graph-tab">
              On the graph
            </button>
          </div>
          {show === 'table' ? <PlanItems plan={preview.plan} /> : <PlanGraph tenant={tenant} project={project} plan={preview.plan} />}
        </div>
      ) : (
        !runId && <Empty>Choose an environment and a selection, then build the plan: nothing is recorded until you request the run.</Empty>
      )}
    </Page>
  )
}
