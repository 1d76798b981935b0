// The typed API client. Types come from the OpenAPI document the backend generates (`make ui` runs
// `lockgate openapi` then openapi-typescript), so a contract change breaks this build, not the user.
import createClient from 'openapi-fetch'
import type { components, paths } from './schema'

export type Schemas = components['schemas']
export type RunView = Schemas['RunView']
export type RunDetail = Schemas['RunDetail']
export type RunNode = Schemas['runs_NodeView']
export type GraphOutline = Schemas['GraphOutline']
export type OutlineNode = Schemas['OutlineNode']
export type NodeDetail = Schemas['NodeDetail']
export type CanvasView = Schemas['CanvasView']
export type CanvasCommand =
  | Schemas['MoveNodes']
  | Schemas['ResetPositions']
  | Schemas['CreateGroup']
  | Schemas['RenameGroup']
  | Schemas['SetGroupMembers']
  | Schemas['DeleteGroup']
  | Schemas['SetCollapsed']
  | Schemas['SetGrouping']
  | Schemas['SetViewport']
export type Grouping = NonNullable<CanvasView['grouping']>
export type PlanPreview = Schemas['PlanPreview']
export type ExecutionPlan = Schemas['ExecutionPlan']
export type PlanItem = Schemas['PlanItem']
export type VersionDiff = Schemas['VersionDiff']
export type NodeDiff = Schemas['NodeDiff']
export type GraphVersion = Schemas['GraphVersionView']
export type Ingestion = Schemas['IngestionView']
export type Dashboard = Schemas['Dashboard']
export type Me = Schemas['MeView']
export type ProjectView = Schemas['ProjectView']
export type EnvironmentView = Schemas['EnvironmentView']
export type RunSort = NonNullable<
  NonNullable<paths['/api/tenants/{tenant_id}/runs']['get']['parameters']['query']>['sort']
>

/** An RFC 9457 problem from the API, or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly detail: string

  constructor(status: number, code: string, detail: string) {
    super(detail)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.detail = detail
  }
}

export const api = createClient<paths>({
  // openapi-fetch builds `new Request(baseUrl + path)`: an absolute base also works outside a page (tests).
  baseUrl: globalThis.location?.origin ?? 'http://127.0.0.1',
  // looked up at call time, so tests can stub fetch after this module is loaded
  fetch: (request: Request) => globalThis.fetch(request),
})

type Result<T> = { data?: T; error?: unknown; response: Response }

/** The body of a successful answer, or an ApiError carrying the problem's detail. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>
  try {
    result = await call
  } catch (cause) {
    throw new ApiError(0, 'network', `Lockgate did not answer: ${String(cause)}`)
  }
  if (result.error !== undefined || !result.response.ok) {
    const problem = (result.error ?? {}) as { code?: string; detail?: string; title?: string }
    throw new ApiError(
      result.response.status,
      problem.code ?? 'error',
      problem.detail ?? problem.title ?? `${result.response.status} ${result.response.statusText}`,
    )
  }
  return result.data as T
}

/** Like ``unwrap``, typed as the schema says: openapi-fetch widens tuples (``[x, y]`` becomes ``number[]``), so the
few answers that carry tuples (outline edges, canvas and layout positions) are re-typed from the schema here. */
export async function unwrapAs<T>(call: Promise<Result<unknown>>): Promise<T> {
  return (await unwrap(call)) as T
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.detail
  if (error instanceof Error) return error.message
  return String(error)
}
