// What one can do to a run from its page: cancel it (with a reason), approve or reject its plan (with a comment),
// plan it again. The API has the last word (roles, separation of duties, stale plans); its refusal is shown as said.
import { zodResolver } from '@hookform/resolvers/zod'
import { useForm } from 'react-hook-form'
import type { RunDetail, RunView } from '@/api/client'
import { useRunActions } from '@/api/hooks'
import { ErrorBox } from '@/components/common'
import { toast } from '@/lib/bus'
import { cancelSchema, decisionSchema, MAX_COMMENT, type CancelValues, type DecisionValues } from './decision'

export const DECISION_COMMENT_ID = 'decision-comment'
export const CANCEL_REASON_ID = 'cancel-reason'

export function CancelRunForm({ tenant, run, onClose }: { tenant: string; run: RunView; onClose: () => void }) {
  const { cancel } = useRunActions(tenant)
  const form = useForm<CancelValues>({ resolver: zodResolver(cancelSchema), defaultValues: { reason: '' } })
  const submit = form.handleSubmit(async ({ reason }) => {
    const answer = await cancel.mutateAsync({ runId: run.run_id, reason: reason.trim() }).catch(() => null)
    if (!answer) return // the error is on screen
    toast(answer.status === 'canceled' ? 'Run canceled.' : 'Cancel requested: dbt is being stopped.')
    onClose()
  })
  const error = form.formState.errors.reason?.message
  return (
    <form className="card run-action-form" onSubmit={submit} aria-label="Cancel this run">
      <div className="form-row">
        <label htmlFor={CANCEL_REASON_ID}>Why cancel? (optional, recorded with the run)</label>
        <input id={CANCEL_REASON_ID} autoFocus maxLength={MAX_COMMENT} {...form.register('reason')} placeholder="e.g. wrong branch" />
        {error && <span className="field-error">{error}</span>}
      </div>
      <div className="row">
        <button type="submit" className="danger" disabled={cancel.isPending} data-testid="cancel-confirm">
          {cancel.isPending ? 'Cancelling…' : 'Cancel run'}
        </button>
        <button type="button" onClick={onClose}>
          Keep it
        </button>
      </div>
      {cancel.isError && <ErrorBox error={cancel.error} title="The run was not canceled" />}
    </form>
  )
}

type Approvals = NonNullable<RunDetail['explain']>['approvals']

/** Why the plan needs a decision, as the policies said it: the approver decides on these grounds. */
function ApprovalGrounds({ approvals }: { approvals: Approvals }) {
  if (!approvals?.length) return null
  return (
    <ul className="run-approval-grounds">
      {approvals.map((a, i) => (
        <li key={i}>
          {a.message} <span className="muted">({a.role}, {a.policy})</span>
        </li>
      ))}
    </ul>
  )
}

export function DecisionForm({ tenant, run, approvals }: { tenant: string; run: RunView; approvals?: Approvals }) {
  const { approve, reject } = useRunActions(tenant)
  const form = useForm<DecisionValues>({ resolver: zodResolver(decisionSchema), defaultValues: { decision: 'approve', comment: '' } })
  const pending = approve.isPending || reject.isPending
  const failed = approve.error ?? reject.error

  const decide = (decision: DecisionValues['decision']) => {
    approve.reset()
    reject.reset()
    form.setValue('decision', decision)
    void form.handleSubmit(async (values) => {
      // the plan on screen is the plan decided on: a plan replaced meanwhile is refused (409) rather than approved blindly
      const request = { runId: run.run_id, planId: run.plan_id, comment: values.comment }
      const mutation = values.decision === 'approve' ? approve : reject
      const answer = await mutation.mutateAsync(request).catch(() => null)
      if (answer) toast(values.decision === 'approve' ? 'Run approved.' : 'Run rejected.')
    })()
  }

  const error = form.formState.errors.comment?.message
  return (
    <form className="card run-action-form run-decision" onSubmit={(e) => e.preventDefault()} aria-label="Approve or reject">
      <h2>This run waits for approval</h2>
      <ApprovalGrounds approvals={approvals} />
      <div className="form-row">
        <label htmlFor={DECISION_COMMENT_ID}>Comment (required to reject)</label>
        <textarea id={DECISION_COMMENT_ID} rows={2} maxLength={MAX_COMMENT} {...form.register('comment')} aria-invalid={error ? true : undefined} />
        {error && <span className="field-error" role="alert">{error}</span>}
      </div>
      <div className="row">
        <button type="button" className="primary" disabled={pending} onClick={() => decide('approve')} data-testid="approve-run">
          Approve
        </button>
        <button type="button" className="danger" disabled={pending} onClick={() => decide('reject')} data-testid="reject-run">
          Reject
        </button>
      </div>
      {failed && <ErrorBox error={failed} title="The decision was not recorded" />}
    </form>
  )
}

export function ReplanButton({ tenant, run }: { tenant: string; run: RunView }) {
  const { replan } = useRunActions(tenant)
  return (
    <button
        type="button"
        disabled={replan.isPending}
        title="Plan this run again against the current graph and policies (e.g. after its plan went stale)"
        onClick={() => replan.mutate(run.run_id, { onSuccess: () => toast('Run planned again.'), onError: (e) => toast(`Replan failed: ${e.message}`, 'error') })}
        data-testid="replan-run"
      >
        {replan.isPending ? 'Planning…' : 'Replan'}
    </button>
  )
}
