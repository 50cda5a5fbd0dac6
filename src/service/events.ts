import type { Held } from '../queue/held'
import type { Job, RunReport } from '../queue/job'

/**
 * What happens to jobs, as the job service tells it: metrics, the dashboard and logs subscribe.
 * A listener implements the events it cares about. Methods rather than event objects: an event is
 * emitted for every job, and a call allocates nothing.
 */
export interface JobEventListener {
  scheduled?(job: Job): void
  /** Handed to a consumer (or a runner slot): for good, or under `lease`. */
  taken?(job: Job, lease: Held | undefined): void
  /** Acked by its consumer (`job.result` holds what it returned, if anything). */
  acked?(job: Job): void
  /** A runner lane's run of the job succeeded (`job.result`, `job.report`). */
  succeeded?(job: Job): void
  /** Given back by its consumer: ready at once, or after `delayMs`. */
  released?(job: Job, delayMs: number): void
  /** A lease ran out: the job is back in its lane. */
  expired?(job: Job): void
  /** A dead job queued again by an operator. */
  retried?(job: Job): void
  /** A run failed with no retries left. */
  dead?(job: Job): void
  deleted?(job: Job): void
  /** A runner lane started a run of the job (attempt `job.attempts`). */
  runStarted?(job: Job): void
  runFinished?(job: Job, report: RunReport): void
}

type EventName = keyof JobEventListener

/** The listeners of every event; `emit` calls each that implements it, in subscription order. */
export class EventStream {
  private listeners: JobEventListener[] = []

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: JobEventListener): () => void {
    this.listeners = [...this.listeners, listener]
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener)
    }
  }

  emit<E extends EventName>(event: E, ...args: Parameters<NonNullable<JobEventListener[E]>>): void {
    for (const listener of this.listeners) {
      const handler = listener[event] as ((...a: typeof args) => void) | undefined
      if (handler !== undefined) handler.apply(listener, args)
    }
  }
}
