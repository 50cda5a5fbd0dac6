import type { Logger } from '../log'

/**
 * The runner interface: what the daemon hands a job of a runner lane to. Built-in runners (exec,
 * http) implement it, and so does a user's module (`"runner": "./my-runner.js"`), which exports
 * `createRunner(options: RunnerOptions): Runner` (or a default export of that function).
 */

/** One job, as a runner sees it. */
export interface RunnerJob {
  readonly lane: string
  readonly jobNum: number
  readonly hash: string
  /** 1 on the first run, 2 on the first retry, and so on. */
  readonly attempt: number
  /** Lower runs first, as in the lane. */
  readonly priority: number
  /** The job's message as scheduled: a JSON object on runner lanes. */
  readonly message: string
  /**
   * The message's `arguments` (validated against the lane's spec when it declares one). On exec
   * lanes they are strings, numbers and booleans; other runners may get any JSON values.
   */
  readonly arguments: Readonly<Record<string, unknown>>
  /** The message's `target`, if any (the http runner's per-job URL). */
  readonly target: string | undefined
}

export interface RunContext {
  /**
   * Aborted when the lane's `timeout` passes (`signal.reason` is "timeout") or the daemon stops
   * waiting at shutdown ("shutdown"). A runner must stop its work promptly when it fires.
   */
  readonly signal: AbortSignal
  /** A pino logger already carrying the lane and job number. */
  readonly logger: Logger
}

/** What a run came to. Anything else a runner resolves to is treated as a failure. */
export type RunResult =
  | {
      readonly status: 'succeeded'
      readonly output?: string
      readonly exitCode?: number
      readonly httpStatus?: number
      /** What the run returned (any JSON value, up to max_result_bytes): shown by `GET /job`. */
      readonly result?: unknown
    }
  | {
      readonly status: 'failed'
      /** Why, for operators: "exit code 3", "timeout", "HTTP 503". */
      readonly reason: string
      /** false: the failure is final (a 4xx, a bad request); retries are not tried. Default true. */
      readonly retry?: boolean
      /**
       * true: the job did not get to run (what it runs on is unreachable); it goes back to its lane
       * and this try does not count. Meant with `availability`, so the lane waits instead of spinning.
       */
      readonly requeue?: boolean
      readonly output?: string
      readonly exitCode?: number
      readonly httpStatus?: number
    }

export interface Runner {
  run(job: RunnerJob, context: RunContext): Promise<RunResult>
  /** Called once when its lane starts taking jobs (the daemon is listening): background work begins here. */
  start?(): void
  /** Called once at shutdown, after the last run ended. */
  close?(): Promise<void> | void
  /**
   * Why no run can start now (its engine is unreachable), and when that may have changed: the lane
   * starts nothing until `until` resolves. Undefined: runs can start.
   */
  availability?(): Unavailable | undefined
  /** The runner's own counters, shown beside the lane's in `GET /` (payload.runners). */
  stats?(): Record<string, unknown>
  /** Checks a job's arguments against the runner's own rules when it is scheduled; throws ApiError. */
  checkArguments?(args: Readonly<Record<string, unknown>>): void
}

export interface Unavailable {
  readonly reason: string
  readonly until: Promise<void>
}

/** What a runner is built from: its lane's configuration block and a logger. */
export interface RunnerOptions {
  readonly lane: string
  /** The lane's block from the config file, as written (runner-specific keys included). */
  readonly config: Readonly<Record<string, unknown>>
  /** Directory relative paths in the config resolve against. */
  readonly root: string
  readonly logger: Logger
}

export type CreateRunner = (options: RunnerOptions) => Runner

/** Output kept of a run: the last 4 KiB. */
export const OUTPUT_TAIL_BYTES = 4096

/** Keeps the last `limit` bytes of a stream of chunks. */
export class OutputTail {
  private chunks: Buffer[] = []
  private size = 0

  constructor(private readonly limit = OUTPUT_TAIL_BYTES) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length
  }

  toString(): string {
    const all = Buffer.concat(this.chunks)
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8')
  }
}

/** Checks what a runner resolved to; anything malformed becomes a failure naming the problem. */
export function checkResult(value: unknown): RunResult {
  if (typeof value !== 'object' || value === null) return { status: 'failed', reason: `the runner returned ${describe(value)}, not a result` }
  const result = { ...(value as Record<string, unknown>) }
  // Saved in dead.json and the journal as JSON numbers: anything but a whole number is dropped.
  for (const key of ['exitCode', 'httpStatus'] as const) if (result[key] !== undefined && !Number.isSafeInteger(result[key])) delete result[key]
  if (typeof result.output !== 'string') delete result.output
  if (result.status === 'succeeded') return result as unknown as RunResult
  if (result.status === 'failed') {
    return typeof result.reason === 'string' ? (result as unknown as RunResult) : { ...result, status: 'failed', reason: 'the runner gave no reason' }
  }
  return { status: 'failed', reason: `the runner returned a result with status ${describe(result.status)}` }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value)
  return text === undefined ? String(value) : text.slice(0, 80)
}
