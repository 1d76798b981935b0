// The groups of the current drawing: collapse or expand each (or all), and rename or delete the user's own
// groups. Every change here is a canvas command; none touches the graph.
import { zodResolver } from '@hookform/resolvers/zod'
import { useState } from 'react'
import { useForm } from 'react-hook-form'
import { z } from 'zod'
import type { CanvasCommand } from '@/api/client'
import type { UserGroup } from './model'

export const groupNameSchema = z.object({
  name: z.string().trim().min(1, { error: 'A group needs a name' }).max(200, { error: 'At most 200 characters' }),
})
type GroupName = z.infer<typeof groupNameSchema>

export function GroupNameForm({ initial, submitLabel, onSubmit, onCancel }: { initial?: string; submitLabel: string; onSubmit: (name: string) => void; onCancel?: () => void }) {
  const form = useForm<GroupName>({ resolver: zodResolver(groupNameSchema), defaultValues: { name: initial ?? '' } })
  return (
    <form className="row" onSubmit={form.handleSubmit((v) => onSubmit(v.name))} data-testid="group-name-form">
      <input {...form.register('name')} placeholder="Group name" aria-label="Group name" autoFocus />
      <button type="submit" className="primary">
        {submitLabel}
      </button>
      {onCancel && (
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      )}
      {form.formState.errors.name && <span className="field-error">{form.formState.errors.name.message}</span>}
    </form>
  )
}

type Props = {
  groups: Map<string, { label: string; members: string[] }>
  userGroups: UserGroup[]
  collapsed: ReadonlySet<string>
  send: (command: CanvasCommand) => void
  canEdit: boolean
}

export function GroupsPanel({ groups, userGroups, collapsed, send, canEdit }: Props) {
  const [renaming, setRenaming] = useState<string | null>(null)
  const [filter, setFilter] = useState('')
  const keys = [...groups.keys()].sort((a, b) => (groups.get(a)?.label ?? a).localeCompare(groups.get(b)?.label ?? b))
  const shown = filter ? keys.filter((k) => (groups.get(k)?.label ?? k).toLowerCase().includes(filter.toLowerCase())) : keys
  if (keys.length === 0 && userGroups.length === 0)
    return <p className="muted small">No groups. Group by folder, package, tag or type, or select nodes (Shift+drag) and group them.</p>
  return (
    <div className="stack" data-testid="groups-panel">
      <div className="row">
        <strong>Groups ({keys.length})</strong>
        <button type="button" disabled={!canEdit || keys.length === 0} onClick={() => send({ type: 'set_collapsed', keys, collapsed: true })}>
          Collapse all
        </button>
        <button type="button" disabled={!canEdit || collapsed.size === 0} onClick={() => send({ type: 'set_collapsed', keys: [...collapsed], collapsed: false })}>
          Expand all
        </button>
      </div>
      {keys.length > 12 && (
        <input type="search" placeholder={`Filter ${keys.length} groups…`} value={filter} onChange={(e) => setFilter(e.target.value)} aria-label="Filter groups" />
      )}
      <ul className="plain groups-list">
        {shown.map((key) => {
          const group = groups.get(key)!
          const own = userGroups.find((g) => `group:${g.group_id}` === key)
          return (
            <li key={key} data-testid={`group-${key}`}>
              <input
                type="checkbox"
                checked={!collapsed.has(key)}
                disabled={!canEdit}
                aria-label={`Show the nodes of ${group.label}`}
                onChange={(e) => send({ type: 'set_collapsed', keys: [key], collapsed: !e.target.checked })}
              />
              {renaming === key && own ? (
                <GroupNameForm
                  initial={own.name}
                  submitLabel="Rename"
                  onCancel={() => setRenaming(null)}
                  onSubmit={(name) => {
                    send({ type: 'rename_group', group_id: own.group_id, name })
                    setRenaming(null)
                  }}
                />
              ) : (
                <>
                  <span title={key}>{group.label}</span>
                  <span className="muted small">{group.members.length}</span>
                  {own && canEdit && (
                    <>
                      <button type="button" className="link" onClick={() => setRenaming(key)}>
                        rename
                      </button>
                      <button type="button" className="link" onClick={() => send({ type: 'delete_group', group_id: own.group_id })}>
                        delete
                      </button>
                    </>
                  )}
                </>
              )}
            </li>
          )
        })}
      </ul>
    </div>
  )
}
