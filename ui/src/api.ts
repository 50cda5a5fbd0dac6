import type { Job as BaseJob } from '../../src/client/job'

/** Calls to the daemon's JSON API, each with the token the operator gave (kept for this tab only). */

const TOKEN_KEY = 'dispenserd-token'

export class Unauthorized extends Error {}

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? ''
}

export function setToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value)
}

export interface Reply {
  status: string
  code: number
  message?: string
  [key: string]: unknown
}

/** GET (no body) or POST (a body) to an endpoint; throws Unauthorized on 401 and Error(message) on any other error. */
export async function api<T = Reply>(path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {}
  if (token() !== '') headers.Authorization = `Bearer ${token()}`
  const res = await fetch(path, body === undefined ? { headers } : { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  if (res.status === 401) throw new Unauthorized('the daemon wants its auth_token')
  const reply = (await res.json()) as Reply
  if (reply.status === 'error') throw new Error(reply.message ?? `HTTP ${res.status}`)
  return reply as T
}

export function query(fields: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== '') params.set(key, String(value))
  return params.toString()
}

/** A job as GET /job and pages show it: the client's Job, with its state, position, ETA and last run. */
export interface Job extends BaseJob {
  state?: string
  position?: number
  eta_seconds?: number | null
  last_run?: { state: string; started_at: string; finished_at: string; duration_ms: number; reason: string | null; exit_code: number | null; http_status: number | null; output: string }
}

export interface Page {
  total: number
  next_cursor: string | null
  jobs: Job[]
}

/** The overview (GET /lanes and the live socket), as the daemon defines it. */
export type { LaneOverview as Lane, Overview } from '../../src/metrics/overview-types'
