import { OutputTail, type Runner, type RunnerOptions, type RunResult } from './runner'

/**
 * The http runner (dispatchr): POSTs `{"taskName", "taskArgs"}` as JSON to the lane's `target`,
 * or to the job's own `target` when it starts with one of the lane's `allowed_targets` prefixes.
 * 2xx: succeeded. 4xx: failed for good (the request itself is wrong). 5xx, other answers,
 * timeouts and connection errors: failed, retried as the lane says.
 */

function httpUrl(value: unknown, key: string): string {
  if (typeof value !== 'string') throw new Error(`"${key}" must be an http or https URL`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new Error(`"${key}" must be an http or https URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`"${key}" must be an http or https URL, got ${JSON.stringify(value)}`)
  return value
}

export function createHttpRunner(options: RunnerOptions): Runner {
  const { target, allowed_targets: allowed, task_name: taskName } = options.config
  const laneTarget = target === undefined ? undefined : httpUrl(target, 'target')
  if (allowed !== undefined && !Array.isArray(allowed)) throw new Error('"allowed_targets" must be a list of URL prefixes')
  const prefixes = ((allowed ?? []) as unknown[]).map((prefix, i) => httpUrl(prefix, `allowed_targets[${i}]`))
  if (laneTarget === undefined && prefixes.length === 0) throw new Error('give "target" (where jobs are POSTed), "allowed_targets" (prefixes a job\'s own target must start with), or both')
  if (taskName !== undefined && typeof taskName !== 'string') throw new Error('"task_name" must be a string')
  const name = (taskName as string | undefined) ?? options.lane

  return {
    async run(job, context): Promise<RunResult> {
      let url = laneTarget
      if (job.target !== undefined) {
        if (!prefixes.some((prefix) => job.target!.startsWith(prefix))) {
          return { status: 'failed', reason: `target ${JSON.stringify(job.target)} is not under this lane's allowed_targets`, retry: false }
        }
        url = job.target
      }
      if (url === undefined) return { status: 'failed', reason: 'the job names no target and the lane has none', retry: false }
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ taskName: name, taskArgs: job.arguments }),
          signal: context.signal,
          redirect: 'manual',
        })
        const output = await bodyTail(response)
        const status = response.status
        if (status >= 200 && status < 300) return { status: 'succeeded', httpStatus: status, output }
        return { status: 'failed', reason: `HTTP ${status}`, httpStatus: status, output, retry: !(status >= 400 && status < 500) }
      } catch (err) {
        if (context.signal.aborted) return { status: 'failed', reason: String(context.signal.reason) }
        const cause = (err as { cause?: { code?: string; message?: string } }).cause
        return { status: 'failed', reason: `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}` }
      }
    },
  }
}

/** The last 4 KiB of a response body, read as it streams (a large body is not held whole). */
async function bodyTail(response: Response): Promise<string> {
  const tail = new OutputTail()
  if (response.body === null) return ''
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) tail.push(Buffer.from(chunk))
  return tail.toString()
}
