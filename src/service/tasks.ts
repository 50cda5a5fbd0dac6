import { DeadlineTimer } from '../deadlines'
import type { Logger } from '../log'

/** What `GET /` shows of a background task. */
export interface TaskStatus {
  runs: number
  last_run_at: string | null
  last_duration_ms: number | null
  last_error: string | null
  /** Runs that failed since start. */
  errors: number
}

function noop(): void {}

/** Node timers overflow past 2^31-1 ms (~24.8 days), so longer intervals are waited in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A chore the daemon does on its own (Faktory's named, counted tasks): snapshots, the lease and
 * delay reaper, journal repair, later cron. Each run is counted, timed and its error kept, so an
 * operator sees in `GET /` what the daemon does behind the requests, and whether it fails.
 */
export class Task {
  readonly status: TaskStatus = { runs: 0, last_run_at: null, last_duration_ms: null, last_error: null, errors: 0 }
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(
    readonly name: string,
    private readonly work: () => void | Promise<void>,
    private readonly logger: Logger,
  ) {}

  /** Runs the task now; resolves once it is done. Never rejects: a failure is kept and logged. */
  async run(): Promise<void> {
    const started = performance.now()
    this.status.last_run_at = new Date().toISOString()
    this.status.runs++
    try {
      await this.work()
      this.status.last_error = null
    } catch (err) {
      this.status.last_error = `${this.status.last_run_at}: ${err instanceof Error ? err.message : String(err)}`
      this.status.errors++
      this.logger.error({ task: this.name, err }, 'background task failed')
    } finally {
      this.status.last_duration_ms = Math.round(performance.now() - started)
    }
  }

  /** Starts a run without waiting for it (a run never fails: see run). */
  trigger(): void {
    this.run().then(noop, noop)
  }

  /** Runs the task every `ms` (the first run after `ms`). */
  every(ms: number): this {
    let remaining = ms
    const arm = (): void => {
      if (this.stopped) return
      const step = Math.min(remaining, MAX_TIMER_MS)
      this.timer = setTimeout(() => {
        remaining -= step
        if (remaining > 0) return arm()
        remaining = ms
        // run() never rejects (a failure is kept in the status).
        this.run().then(arm, arm)
      }, step)
    }
    arm()
    return this
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }
}

/** Every background task of the daemon, by name. */
export class BackgroundTasks {
  private readonly tasks = new Map<string, Task>()

  constructor(private readonly logger: Logger) {}

  add(name: string, work: () => void | Promise<void>): Task {
    const task = new Task(name, work, this.logger)
    this.tasks.set(name, task)
    return task
  }

  /**
   * A task run by one deadline timer (beanstalkd's way: no timer per item): it runs when the timer
   * goes off, then `next` says when it must run again. Returns the timer, to arm for an earlier time.
   * (The work is synchronous with the in-memory store, so it is done before `next` is asked.)
   */
  onDeadlines(name: string, work: () => void, next: () => number | undefined, clock: () => number): DeadlineTimer {
    const task = this.add(name, work)
    return new DeadlineTimer(() => {
      task.trigger()
      return next()
    }, clock)
  }

  status(): Record<string, TaskStatus> {
    return Object.fromEntries([...this.tasks].map(([name, task]) => [name, { ...task.status }]))
  }

  stopAll(): void {
    for (const task of this.tasks.values()) task.stop()
  }
}
