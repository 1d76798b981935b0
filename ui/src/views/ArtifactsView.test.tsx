import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { File as NodeFile } from 'node:buffer'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { version } from '@/test/fixtures'
import { ME, renderView, stubApi, type Answer } from '@/test/views'
import ArtifactsView from './ArtifactsView'
import { ingestSchema, MAX_ARTIFACT_BYTES } from './artifactsModel'

const PROJECT = '/api/tenants/default/projects/demo'

const INGESTION = {
  ingestion_id: '01a25306-542f-7e23-bcfe-c0bf717341bd',
  stream_version: 15,
  recorded_at: '2026-12-08T00:20:53Z',
  actor: 'system:runner',
  graph_version: 3,
  new_version: true,
  nodes: 42,
  edges: 49,
  unknown_nodes: 0,
  warnings: ['catalog: 1 relation is not in the manifest'],
  artifacts: [
    {
      key: 'default/manifest/68/6896f2622d38c0f75f04e73968ed0d14df5d71c081c49d2156974ca81c0e9ccb',
      size: 680931,
      sha256: '6896f2622d38c0f75f04e73968ed0d14df5d71c081c49d2156974ca81c0e9ccb',
      info: {
        kind: 'manifest',
        schema_version: 12,
        dbt_schema_version: 'https://schemas.getdbt.com/dbt/manifest/v12.json',
        dbt_version: '1.11.16',
        adapter_type: 'duckdb',
      },
    },
    { something: 'from a future version of the API' },
  ],
}

const OUTCOME = {
  project_id: 'demo',
  graph_version: 4,
  new_version: true,
  deduplicated: false,
  nodes: 44,
  edges: 51,
  added: 2,
  changed: 1,
  removed: 0,
  renamed: 1,
  warnings: ['run_results: 1 result for an unknown node'],
}

function stubArtifactsApi(ingest: () => Answer = () => ({ status: 201, body: OUTCOME })) {
  return stubApi({
    [`GET ${PROJECT}/graph/versions`]: () => ({ body: { items: [{ ...version(3), added: 2, renamed: 1 }, version(2)] } }),
    [`GET ${PROJECT}/ingestions`]: () => ({ body: { items: [INGESTION] } }),
    [`POST ${PROJECT}/ingestions`]: ingest,
  })
}

function renderArtifacts(me = ME) {
  return renderView(<ArtifactsView />, { url: '/projects/demo/artifacts', route: '/projects/:project/artifacts', me })
}

function json(name: string, size?: number): File {
  const file = new File(['{}'], name, { type: 'application/json' })
  if (size !== undefined) Object.defineProperty(file, 'size', { value: size })
  return file
}

/**
 * Files and forms the test environment can put on the wire. jsdom's File and FormData are opaque to Node's
 * Request (it would send the file as an empty "blob"), while a browser sends its own as they are: so for the
 * upload test, the form data and files are Node's own (Node's FormData taken from a Response, which makes one).
 */
function wireFile(name: string, content: string): File {
  return new NodeFile([content], name, { type: 'application/json' }) as unknown as File
}

async function useNodeFormData() {
  const nodeForm = await new Response(new URLSearchParams('a=b')).formData()
  vi.stubGlobal('FormData', nodeForm.constructor)
}

afterEach(() => vi.unstubAllGlobals())

describe('the ingest form', () => {
  it('asks for a manifest and sends nothing without one', async () => {
    const { requests } = stubArtifactsApi()
    renderArtifacts()
    await userEvent.click(screen.getByTestId('ingest-submit'))
    expect(await screen.findByText('Choose the manifest.json to ingest.')).toBeInTheDocument()
    expect(screen.getByTestId('ingest-manifest')).toHaveAttribute('aria-invalid', 'true')
    expect(requests.filter((r) => r.method === 'POST')).toEqual([])
  })

  it('sends the chosen files as multipart fields named after their kind, and shows the outcome', async () => {
    const { requests } = stubArtifactsApi()
    await useNodeFormData()
    renderArtifacts()
    await userEvent.upload(screen.getByTestId('ingest-manifest'), wireFile('manifest.json', '{"nodes": {}}'))
    await userEvent.upload(screen.getByLabelText(/catalog\.json/), wireFile('catalog.json', '{"sources": {}}'))
    await userEvent.click(screen.getByTestId('ingest-submit'))

    const outcome = await screen.findByTestId('ingest-outcome')
    expect(outcome).toHaveTextContent('Graph version 4: 2 added, 1 changed, 0 removed, 1 renamed')
    expect(outcome).toHaveTextContent('run_results: 1 result for an unknown node')
    expect(within(outcome).getByRole('link', { name: /diff against v3/ })).toHaveAttribute('href', '/projects/demo/diff?from=3&to=4')

    const post = requests.find((r) => r.method === 'POST')!
    expect(new URL(post.url).pathname).toBe(`${PROJECT}/ingestions`)
    expect(post.headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/)
    const form = await post.formData()
    expect([...form.keys()]).toEqual(['manifest', 'catalog'])
    const manifest = form.get('manifest') as File
    const catalog = form.get('catalog') as File
    expect(manifest.name).toBe('manifest.json')
    expect(catalog.name).toBe('catalog.json')
    expect(await manifest.text()).toBe('{"nodes": {}}')
  })

  it('says "nothing changed" when the artifacts were already ingested', async () => {
    stubArtifactsApi(() => ({ status: 200, body: { ...OUTCOME, graph_version: 3, new_version: false, deduplicated: true, warnings: [] } }))
    renderArtifacts()
    await userEvent.upload(screen.getByTestId('ingest-manifest'), json('manifest.json'))
    await userEvent.click(screen.getByTestId('ingest-submit'))
    expect(await screen.findByTestId('ingest-outcome')).toHaveTextContent('Nothing changed')
  })

  it("shows the API's problem detail when the ingestion fails", async () => {
    stubArtifactsApi(() => ({
      status: 422,
      body: { status: 422, code: 'contract_violation', detail: 'manifest.json: unsupported dbt schema v7' },
    }))
    renderArtifacts()
    await userEvent.upload(screen.getByTestId('ingest-manifest'), json('manifest.json'))
    await userEvent.click(screen.getByTestId('ingest-submit'))
    expect(await screen.findByRole('alert')).toHaveTextContent('manifest.json: unsupported dbt schema v7')
  })

  it('is not there for a reader', async () => {
    stubArtifactsApi()
    renderArtifacts({ ...ME, roles: ['viewer'], can_write: false })
    expect(await screen.findByTestId('versions')).toBeInTheDocument()
    expect(screen.queryByTestId('ingest-form')).toBeNull()
  })
})

describe('ingestSchema', () => {
  /** A FileList as a file input holds it (jsdom has no DataTransfer to build one). */
  const list = (...files: File[]): FileList =>
    Object.create(FileList.prototype, {
      length: { value: files.length },
      item: { value: (i: number) => files[i] ?? null },
    })
  const errors = (values: Record<string, unknown>) => {
    const result = ingestSchema.safeParse(values)
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  }

  it('needs a manifest; the other artifacts are optional', () => {
    expect(errors({})).toEqual(['manifest: Choose the manifest.json to ingest.'])
    expect(errors({ manifest: list() })).toEqual(['manifest: Choose the manifest.json to ingest.'])
    expect(errors({ manifest: list(json('manifest.json')) })).toEqual([])
  })

  it('takes .json files of at most 1 GiB', () => {
    expect(errors({ manifest: list(json('manifest.yml')) })).toEqual(['manifest: manifest.yml is not a .json file; expected manifest.json.'])
    expect(errors({ manifest: list(json('manifest.json', MAX_ARTIFACT_BYTES)) })).toEqual([])
    expect(errors({ manifest: list(json('manifest.json')), catalog: list(json('catalog.json', MAX_ARTIFACT_BYTES + 1)) })).toEqual([
      'catalog: catalog.json is 1.0 GiB; the limit is 1 GiB.',
    ])
  })

  it('reads each input as its chosen file', () => {
    const manifest = json('manifest.json')
    const parsed = ingestSchema.parse({ manifest: list(manifest), sources: list() })
    expect(parsed.manifest).toBe(manifest)
    expect(parsed.sources).toBeUndefined()
  })
})

describe('the lists', () => {
  it('shows each ingestion with its artifacts and a download link, and each version with a link to its diff', async () => {
    stubArtifactsApi()
    renderArtifacts()
    const ingestions = await screen.findByTestId('ingestions')
    const row = within(ingestions).getByText('manifest').closest('tr')!
    expect(row).toHaveTextContent('v12')
    expect(row).toHaveTextContent('1.11.16')
    expect(row).toHaveTextContent('665 KiB')
    expect(row).toHaveTextContent('6896f2622d38')
    expect(within(row).getByRole('link', { name: 'Download' })).toHaveAttribute(
      'href',
      `${PROJECT}/artifacts/${INGESTION.artifacts[0]!.key}`,
    )
    expect(within(ingestions).getAllByRole('link', { name: 'Download' })).toHaveLength(1) // the unreadable record is left out
    expect(ingestions).toHaveTextContent('system:runner')
    expect(ingestions).toHaveTextContent('catalog: 1 relation is not in the manifest')

    const versions = screen.getByTestId('versions')
    const v3 = within(versions).getByText('v3').closest('tr')!
    expect(v3).toHaveTextContent('2 added')
    expect(v3).toHaveTextContent('1 renamed')
    expect(within(v3).getByRole('link', { name: 'v2 → v3' })).toHaveAttribute('href', '/projects/demo/diff?from=2&to=3')
    await waitFor(() => expect(within(versions).getAllByRole('row')).toHaveLength(3))
  })
})
