// Small pieces every view uses: a status badge, an error box, an empty state, a page frame.
import type { ReactNode } from 'react'
import { errorText } from '@/api/client'
import { statusClass } from '@/graph/nodes'

export function StatusBadge({ status }: { status: string | null | undefined }) {
  if (!status) return <span className="badge none">—</span>
  return <span className={`badge ${badgeClass(status)}`}>{status.replace('_', ' ')}</span>
}

/** The colour of a run's status (``failed``, ``awaiting_approval``...) or of a node's (``error``, ``warn``...). */
export function badgeClass(status: string): string {
  switch (status) {
    case 'awaiting_approval':
    case 'queued':
    case 'planning':
      return 'wait'
    case 'approved':
      return 'ok'
    case 'failed':
      return 'bad'
    case 'warning':
      return 'warn'
    case 'rejected':
    case 'canceled':
      return 'skip'
    default:
      return statusClass(status)
  }
}

export function ErrorBox({ error, title = 'Something went wrong' }: { error: unknown; title?: string }) {
  return (
    <div className="error-box" role="alert">
      <strong>{title}</strong>
      <p>{errorText(error)}</p>
    </div>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <div className="loading" role="status">
      {what}…
    </div>
  )
}

export function Page({ title, actions, children, wide }: { title: ReactNode; actions?: ReactNode; children: ReactNode; wide?: boolean }) {
  return (
    <section className={`page${wide ? ' wide' : ''}`}>
      <header className="page-head">
        <h1>{title}</h1>
        {actions && <div className="page-actions">{actions}</div>}
      </header>
      {children}
    </section>
  )
}
