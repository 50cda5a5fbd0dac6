import { type Location, httpLocation, isUnder } from './location'
import { OUTPUT_TAIL_BYTES, OutputTail, type Runner, type RunnerOptions, type RunResult } from './runner'

/**
 * The http runner (dispatchr): POSTs `{"taskName", "taskArgs"}` as JSON to the lane's `target`,
 * or to the job's own `target` when it starts with one of the lane's `allowed_targets` prefixes.
 * 2xx: succeeded. 4xx: failed for good (the request itself is wrong). 5xx, other answers,
 * timeouts and connection errors: failed, retried as the lane says.
 *
 * Job targets are compared as parsed URLs, not as strings (location.ts): `https://app/hooks/../admin`
 * is `https://app/admin`, a prefix `http://app` must not admit `http://app.elsewhere.net`, and
 * `http://app/hooks` does not admit `http://app/hooks-admin`.
 */

/** A URL fetch can POST to: http or https, with no user:password (fetch refuses those). */
function parseTarget(value: string): URL | string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'is not a URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'is not an http or https URL'
  if (url.username !== '' || url.password !== '') return 'carries a user name or password'
  return url
}

function configUrl(value: unknown, key: string): URL {
  if (typeof value !== 'string') throw new Error(`"${key}" must be an http or https URL`)
  const url = parseTarget(value)
  if (typeof url === 'string') throw new Error(`"${key}" must be an http or https URL with no user name or password, got ${JSON.stringify(value)}`)
  return url
}

/** A prefix of allowed_targets: a path ends a prefix, so a query or fragment there would be ignored. */
function prefixLocation(value: unknown, i: number): Location {
  const url = configUrl(value, `allowed_targets[${i}]`)
  if (url.search !== '' || url.hash !== '') throw new Error(`"allowed_targets[${i}]" must be a URL prefix with no query or fragment, got ${JSON.stringify(value)}`)
  return httpLocation(url)
}

/** The URL a job is POSTed to, or why it may not be. */
function jobUrl(target: string | undefined, laneTarget: URL | undefined, prefixes: Location[]): URL | string {
  if (target === undefined) return laneTarget ?? 'the job names no target and the lane has none'
  const url = parseTarget(target)
  if (typeof url === 'string') return `target ${JSON.stringify(target)} ${url}`
  const location = httpLocation(url)
  if (!prefixes.some((prefix) => isUnder(location, prefix))) return `target ${JSON.stringify(target)} is not under this lane's allowed_targets`
  return url
}

export function createHttpRunner(options: RunnerOptions): Runner {
  const { target, allowed_targets: allowed, task_name: taskName } = options.config
  const laneTarget = target === undefined ? undefined : configUrl(target, 'target')
  if (allowed !== undefined && !Array.isArray(allowed)) throw new Error('"allowed_targets" must be a list of URL prefixes')
  const prefixes = ((allowed ?? []) as unknown[]).map(prefixLocation)
  if (laneTarget === undefined && prefixes.length === 0) throw new Error('give "target" (where jobs are POSTed), "allowed_targets" (prefixes a job\'s own target must start with), or both')
  if (taskName !== undefined && (typeof taskName !== 'string' || taskName === '')) throw new Error('"task_name" must be a non-empty string')
  const name = (taskName as string | undefined) ?? options.lane

  return {
    async run(job, context): Promise<RunResult> {
      const url = jobUrl(job.target, laneTarget, prefixes)
      if (typeof url === 'string') return { status: 'failed', reason: url, retry: false }
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ taskName: name, taskArgs: job.arguments }),
          signal: context.signal,
          redirect: 'manual',
        })
        const { output, whole } = await bodyTail(response)
        const status = response.status
        if (status >= 200 && status < 300) return { status: 'succeeded', httpStatus: status, output, result: jsonResult(response, output, whole) }
        return { status: 'failed', reason: `HTTP ${status}`, httpStatus: status, output, retry: !(status >= 400 && status < 500) }
      } catch (err) {
        if (context.signal.aborted) return { status: 'failed', reason: String(context.signal.reason) }
        return { status: 'failed', reason: `cannot reach ${url.href}: ${networkError(err)}` }
      }
    },
  }
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
}

/** fetch says only "fetch failed"; the socket's error is its cause. */
function networkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause
  const code = typeof cause?.code === 'string' ? cause.code : undefined
  if (code !== undefined) return NETWORK_ERRORS[code] === undefined ? code : `${NETWORK_ERRORS[code]} (${code})`
  if (typeof cause?.message === 'string') return cause.message
  return err instanceof Error ? err.message : String(err)
}

/** The last 4 KiB of a response body, read as it streams (a large body is not held whole), and whether that is all of it. */
async function bodyTail(response: Response): Promise<{ output: string; whole: boolean }> {
  const tail = new OutputTail()
  if (response.body === null) return { output: '', whole: true }
  let bytes = 0
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length
    tail.push(Buffer.from(chunk))
  }
  return { output: tail.toString(), whole: bytes <= OUTPUT_TAIL_BYTES }
}

/** A JSON answer (Content-Type application/json, up to 4 KiB) is the run's result. */
function jsonResult(response: Response, body: string, whole: boolean): unknown {
  if (!whole || !/^application\/([\w.+-]+\+)?json\b/i.test(response.headers.get('content-type') ?? '')) return undefined
  try {
    return JSON.parse(body) as unknown
  } catch {
    return undefined
  }
}
