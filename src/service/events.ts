import type { Held } from '../queue/held'
import type { Job, RunReport } from '../queue/job'
import type { Taken } from '../store/job-store'

/**
 * What happens to jobs, as the job service tells it: metrics, the dashboard and logs subscribe.
 * A listener implements the events it cares about. Methods rather than event objects: an event is
 * emitted for every job, and a call allocates nothing.
 */
export interface JobEventListener {
  scheduled?(job: Job): void
  /** Handed to a consumer (or a runner slot): for good, or under `lease`. */
  taken?(job: Job, lease: Held | undefined): void
  /**
   * A batch receive's jobs, all of one lane, in the order handed over: as `taken` for each, which
   * is what a listener without this method is told. Lets a listener do its work once per batch.
   */
  takenMany?(taken: readonly Taken[]): void
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

  /** The jobs of one batch receive: `takenMany` where a listener has it, else `taken` for each. */
  emitTaken(taken: readonly Taken[]): void {
    for (const listener of this.listeners) {
      if (listener.takenMany !== undefined) listener.takenMany(taken)
      else if (listener.taken !== undefined) for (const t of taken) listener.taken(t.job, t.lease)
    }
  }
}
