// The Artifacts tab: what the run stored (run_results.json, manifest.json, dbt.log.gz per invocation), each a
// plain download link (the browser handles the file; the API sends Content-Disposition).
import type { RunView } from '@/api/client'
import { Empty } from '@/components/common'

export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

export function artifactUrl(tenant: string, runId: string, name: string): string {
  return `/api/tenants/${encodeURIComponent(tenant)}/runs/${encodeURIComponent(runId)}/artifacts/${encodeURIComponent(name)}`
}

export function ArtifactsPanel({ tenant, run }: { tenant: string; run: RunView }) {
  const artifacts = run.artifacts ?? []
  if (artifacts.length === 0) return <Empty>This run stored no artifacts{run.finished_at ? '' : ' yet'}.</Empty>
  return (
    <table className="run-artifact-list" data-testid="artifact-list">
      <thead>
        <tr>
          <th>Name</th>
          <th>Size</th>
          <th>SHA-256</th>
        </tr>
      </thead>
      <tbody>
        {artifacts.map((a) => (
          <tr key={a.name}>
            <td>
              <a href={artifactUrl(tenant, run.run_id, a.name)} download={a.name}>
                {a.name}
              </a>
            </td>
            <td className="run-num">{fileSize(a.size)}</td>
            <td>
              <code title={a.sha256}>{a.sha256.slice(0, 16)}…</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
