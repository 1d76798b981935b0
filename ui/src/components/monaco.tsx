// Read-only SQL in Monaco, loaded on demand: Monaco is a ~4 MB chunk, so views import these light wrappers and the
// editor (with its offline setup in ./monacoEditors) is fetched only when one of them first renders.
import { lazy, Suspense } from 'react'

export type SqlViewerProps = {
  value: string
  /** CSS height of the editor, e.g. 420 or '100%'. */
  height?: number | string
  /** A Monaco language id; only 'sql' and 'yaml' are bundled, anything else reads as plain text. */
  language?: string
}

export type SqlDiffProps = {
  /** The left side (the older version); '' when the node did not exist there. */
  original: string
  /** The right side (the newer version); '' when the node no longer exists there. */
  modified: string
  height?: number | string
  language?: string
}

const LazySqlViewer = lazy(() => import('./monacoEditors').then((m) => ({ default: m.MonacoSqlViewer })))
const LazySqlDiff = lazy(() => import('./monacoEditors').then((m) => ({ default: m.MonacoSqlDiff })))

function EditorLoading({ height }: { height: number | string }) {
  return (
    <div className="loading" role="status" style={{ height }}>
      Loading the editor…
    </div>
  )
}

export function SqlViewer({ height = 420, ...props }: SqlViewerProps) {
  return (
    <Suspense fallback={<EditorLoading height={height} />}>
      <LazySqlViewer height={height} {...props} />
    </Suspense>
  )
}

export function SqlDiff({ height = 420, ...props }: SqlDiffProps) {
  return (
    <Suspense fallback={<EditorLoading height={height} />}>
      <LazySqlDiff height={height} {...props} />
    </Suspense>
  )
}
