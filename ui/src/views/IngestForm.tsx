// Upload dbt artifacts to the project: manifest.json (required) plus catalog, run_results and sources. Checked
// in the browser first (a .json file, at most 1 GiB), then sent as one multipart request; the answer says which
// graph version the upload made and what changed, or that nothing did.
import { zodResolver } from '@hookform/resolvers/zod'
import { useForm } from 'react-hook-form'
import { Link } from 'react-router'
import type { Schemas } from '@/api/client'
import { useIngest } from '@/api/hooks'
import { paths } from '@/app/routes'
import { ErrorBox } from '@/components/common'
import { ARTIFACT_FIELDS, ingestSchema, type IngestFiles, type IngestFormInput } from './artifactsModel'

type Outcome = Schemas['IngestionOutcome']

export function IngestForm({ tenant, project }: { tenant: string; project: string }) {
  const ingest = useIngest(tenant, project)
  const {
    register,
    handleSubmit,
    reset,
    formState: { errors },
  } = useForm<IngestFormInput, unknown, IngestFiles>({ resolver: zodResolver(ingestSchema) })

  const submit = (files: IngestFiles) =>
    ingest.mutate(files, {
      // clear the inputs so the same files are not sent twice by accident; the outcome stays on screen
      onSuccess: () => reset(),
    })

  return (
    <form className="card ingest-form" data-testid="ingest-form" onSubmit={handleSubmit(submit)} noValidate>
      <h2>Ingest artifacts</h2>
      <div className="ingest-fields">
        {ARTIFACT_FIELDS.map((field) => {
          const error = errors[field.name]?.message
          const id = `ingest-${field.name}`
          return (
            <div key={field.name} className="form-row">
              <label htmlFor={id}>
                <strong>{field.file}</strong> {field.required ? '(required)' : '(optional)'} · {field.hint}
              </label>
              <input
                id={id}
                type="file"
                accept=".json,application/json"
                data-testid={field.name === 'manifest' ? 'ingest-manifest' : undefined}
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? `${id}-error` : undefined}
                {...register(field.name)}
              />
              {error && (
                <span id={`${id}-error`} className="field-error" role="alert">
                  {error}
                </span>
              )}
            </div>
          )
        })}
      </div>
      <div className="row">
        <button type="submit" className="primary" data-testid="ingest-submit" disabled={ingest.isPending}>
          {ingest.isPending ? 'Ingesting…' : 'Ingest'}
        </button>
      </div>
      {ingest.isError && <ErrorBox error={ingest.error} title="The ingestion failed" />}
      {ingest.data && <IngestOutcome project={project} outcome={ingest.data} />}
    </form>
  )
}

export function IngestOutcome({ project, outcome }: { project: string; outcome: Outcome }) {
  const warnings = outcome.warnings ?? []
  return (
    <div className="ingest-outcome" data-testid="ingest-outcome" role="status">
      {outcome.deduplicated ? (
        <p>
          <strong>Nothing changed</strong>: these artifacts were already ingested (graph version {outcome.graph_version}).
        </p>
      ) : outcome.new_version ? (
        <p>
          <strong>Graph version {outcome.graph_version}</strong>: {outcome.added ?? 0} added, {outcome.changed ?? 0}{' '}
          changed, {outcome.removed ?? 0} removed, {outcome.renamed ?? 0} renamed · {outcome.nodes} nodes,{' '}
          {outcome.edges} edges.{' '}
          <Link to={paths.diff(project, outcome.graph_version - 1, outcome.graph_version)}>
            See the diff against v{outcome.graph_version - 1}
          </Link>
        </p>
      ) : (
        <p>
          <strong>Ingested</strong>; the graph did not change (still version {outcome.graph_version}).
        </p>
      )}
      {warnings.length > 0 && <Warnings warnings={warnings} />}
    </div>
  )
}

export function Warnings({ warnings }: { warnings: readonly string[] }) {
  return (
    <details className="warnings" open={warnings.length <= 3}>
      <summary>
        {warnings.length} warning{warnings.length === 1 ? '' : 's'}
      </summary>
      <ul>
        {warnings.map((w, i) => (
          <li key={i}>{w}</li>
        ))}
      </ul>
    </details>
  )
}
