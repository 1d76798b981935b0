// The command palette's "This run" section: switch tabs, cancel, decide, go back. Registered while the run's page
// is open, gone when it closes (kbar's useRegisterActions unregisters on unmount).
import { useRegisterActions, type Action } from 'kbar'
import { useLayoutEffect, useMemo, useRef } from 'react'
import { useNavigate } from 'react-router'
import { paths } from '@/app/routes'
import { RUN_TABS, type RunTab } from './tabs'

export type RunPaletteOptions = {
  showTab: (tab: RunTab) => void
  /** Present only when cancelling is possible now. */
  cancel?: () => void
  /** Present only when this user may approve or reject now. */
  decide?: () => void
}

export function useRunPaletteActions(options: RunPaletteOptions): void {
  const navigate = useNavigate()
  // The actions call the latest callbacks through a ref: re-registering them on every render would churn kbar.
  const latest = useRef(options)
  useLayoutEffect(() => {
    latest.current = options
  })
  const canCancel = options.cancel !== undefined
  const canDecide = options.decide !== undefined
  const actions = useMemo<Action[]>(() => {
    const list: Action[] = RUN_TABS.map((tab) => ({
      id: `run-tab-${tab.id}`,
      name: `Show ${tab.label.toLowerCase()}`,
      keywords: `run ${tab.id}`,
      section: 'This run',
      perform: () => latest.current.showTab(tab.id),
    }))
    if (canCancel) list.unshift({ id: 'run-cancel', name: 'Cancel this run', keywords: 'stop abort', section: 'This run', perform: () => latest.current.cancel?.() })
    if (canDecide)
      list.unshift({ id: 'run-decide', name: 'Approve or reject this run', keywords: 'approval decision', section: 'This run', perform: () => latest.current.decide?.() })
    list.push({ id: 'run-back', name: 'Back to all runs', section: 'This run', perform: () => navigate(paths.runs()) })
    return list
  }, [canCancel, canDecide, navigate])
  useRegisterActions(actions, [actions])
}
