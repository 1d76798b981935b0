// The Artifacts view's logic, apart from React: the stored-artifact records of an ingestion (typed `Any` in the
// API schema, so read defensively here), their download address, sizes as people read them, and the ingest form's
// validation.
import { z } from 'zod'

// What the API returns in IngestionView.artifacts (StoredArtifact: its metadata is dbt's, read as ArtifactInfo).
const artifactInfoSchema = z.object({
  kind: z.string(),
  schema_version: z.number().optional(),
  dbt_schema_version: z.string().optional(),
  dbt_version: z.string().nullish(),
  adapter_type: z.string().nullish(),
  project_name: z.string().nullish(),
  invocation_id: z.string().nullish(),
  generated_at: z.string().nullish(),
  command: z.string().nullish(),
})

const storedArtifactSchema = z.object({
  key: z.string(),
  size: z.number(),
  sha256: z.string(),
  info: artifactInfoSchema,
})

export type StoredArtifact = z.infer<typeof storedArtifactSchema>

/** The artifacts of an ingestion that read as stored artifacts; anything else (a future shape) is left out. */
export function readArtifacts(raw: readonly unknown[]): StoredArtifact[] {
  return raw.flatMap((item) => {
    const parsed = storedArtifactSchema.safeParse(item)
    return parsed.success ? [parsed.data] : []
  })
}

/** Where the browser downloads a stored artifact. The key's slashes are path segments of the route. */
export function artifactUrl(tenant: string, project: string, key: string): string {
  const path = key.split('/').map(encodeURIComponent).join('/')
  return `/api/tenants/${encodeURIComponent(tenant)}/projects/${encodeURIComponent(project)}/artifacts/${path}`
}

export function bytes(size: number): string {
  if (size < 1024) return `${size} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = size / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`
}

// ---------------------------------------------------------------------------------------------------------------
// The ingest form

/** The server's default upload limit (LOCKGATE max_upload_bytes); checked here so a 3 GB mistake fails at once. */
export const MAX_ARTIFACT_BYTES = 1024 ** 3

export const ARTIFACT_FIELDS = [
  { name: 'manifest', file: 'manifest.json', required: true, hint: 'the project graph' },
  { name: 'catalog', file: 'catalog.json', required: false, hint: 'column types, from dbt docs generate' },
  { name: 'run_results', file: 'run_results.json', required: false, hint: 'statuses and timings of a run' },
  { name: 'sources', file: 'sources.json', required: false, hint: 'source freshness' },
] as const

export type ArtifactFieldName = (typeof ARTIFACT_FIELDS)[number]['name']

function isFileList(value: unknown): value is FileList {
  return typeof FileList !== 'undefined' && value instanceof FileList
}

/** One file input: its FileList (what the input holds) validated, then read as the chosen file (or undefined). */
function artifactFile(label: string, required: boolean) {
  const field = z
    .custom<FileList | File | null | undefined>(
      (value) => value === null || value === undefined || isFileList(value) || value instanceof File,
      { message: `${label}: not a file` },
    )
    .transform((value) => (isFileList(value) ? (value.item(0) ?? undefined) : (value ?? undefined)))
    .superRefine((file, ctx) => {
      if (!file) {
        if (required) ctx.addIssue({ code: 'custom', message: `Choose the ${label} to ingest.` })
        return
      }
      if (!file.name.toLowerCase().endsWith('.json'))
        ctx.addIssue({ code: 'custom', message: `${file.name} is not a .json file; expected ${label}.` })
      if (file.size > MAX_ARTIFACT_BYTES)
        ctx.addIssue({ code: 'custom', message: `${file.name} is ${bytes(file.size)}; the limit is 1 GiB.` })
    })
  // an optional artifact may be absent altogether; a missing manifest still reaches the check above
  return required ? field : field.optional()
}

export const ingestSchema = z.object({
  manifest: artifactFile('manifest.json', true),
  catalog: artifactFile('catalog.json', false),
  run_results: artifactFile('run_results.json', false),
  sources: artifactFile('sources.json', false),
})

export type IngestFormInput = z.input<typeof ingestSchema>
export type IngestFiles = z.output<typeof ingestSchema>
