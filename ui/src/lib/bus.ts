// App-wide events between components that do not share a parent: the command palette asks the graph to
// focus a node, the layout reports progress, anything can raise a toast.
import mitt from 'mitt'

export type BusEvents = {
  'graph:focus': { uniqueId: string }
  'graph:fit': undefined
  'layout:progress': { phase: 'cache' | 'layout' | 'render' | 'done' | 'canceled' | 'failed'; nodes: number; ms: number }
  toast: { kind: 'info' | 'error'; text: string }
}

export const bus = mitt<BusEvents>()

export function toast(text: string, kind: 'info' | 'error' = 'info'): void {
  bus.emit('toast', { kind, text })
}
