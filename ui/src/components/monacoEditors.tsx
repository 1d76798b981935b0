// Monaco bundled with the app, never from a CDN: @monaco-editor/react's loader fetches Monaco from jsDelivr unless
// it is handed an instance, so this module configures the loader before any editor mounts. Imported only through
// the lazy wrappers of ./monaco, which keeps the editor out of the main chunk.
import { DiffEditor, Editor, loader } from '@monaco-editor/react'
import * as monaco from 'monaco-editor/editor'
import type * as Monaco from 'monaco-editor/editor'
import 'monaco-editor/features/register.all'
import 'monaco-editor/languages/definitions/sql/register'
import 'monaco-editor/languages/definitions/yaml/register'
import EditorWorker from 'monaco-editor/editor/editor.worker?worker'
import { useLayoutEffect, useRef } from 'react'
import type { SqlDiffProps, SqlViewerProps } from './monaco'

// SQL and YAML need no language service: the editor worker (diffs, links) is the only one Monaco asks for.
globalThis.MonacoEnvironment = { getWorker: () => new EditorWorker() }
loader.config({ monaco })

const COMMON_OPTIONS = {
  readOnly: true,
  domReadOnly: true,
  minimap: { enabled: false },
  scrollBeyondLastLine: false,
  fontSize: 12.5,
  renderLineHighlight: 'none',
  wordWrap: 'off',
} satisfies Monaco.editor.IEditorOptions

const VIEWER_OPTIONS: Monaco.editor.IStandaloneEditorConstructionOptions = COMMON_OPTIONS

const DIFF_OPTIONS: Monaco.editor.IDiffEditorConstructionOptions = {
  ...COMMON_OPTIONS,
  originalEditable: false,
  renderSideBySide: true,
  // Monaco falls back to the inline view under 900 px by default; a review reads better side by side.
  useInlineViewWhenSpaceIsLimited: false,
  ignoreTrimWhitespace: false,
  renderOverviewRuler: false,
}

export function MonacoSqlViewer({ value, height = 420, language = 'sql' }: SqlViewerProps) {
  return (
    <Editor value={value} language={language} height={height} options={VIEWER_OPTIONS} loading="Loading the editor…" />
  )
}

export function MonacoSqlDiff({ original, modified, height = 420, language = 'sql' }: SqlDiffProps) {
  const editorRef = useRef<Monaco.editor.IStandaloneDiffEditor | null>(null)
  const onMount = (editor: Monaco.editor.IStandaloneDiffEditor) => {
    editorRef.current = editor
  }
  // @monaco-editor/react disposes the two models before the diff editor on unmount, which Monaco reports as
  // "TextModel got disposed before DiffEditorWidget model got reset". A layout effect's cleanup runs before the
  // library's passive one: detach the models here and dispose them in the right order.
  useLayoutEffect(
    () => () => {
      const editor = editorRef.current
      const models = editor?.getModel()
      editor?.setModel(null)
      models?.original.dispose()
      models?.modified.dispose()
    },
    [],
  )
  return (
    <DiffEditor
      original={original}
      modified={modified}
      language={language}
      height={height}
      options={DIFF_OPTIONS}
      onMount={onMount}
      loading="Loading the editor…"
    />
  )
}
