import type { Exchange } from './exchange'
import type { Pacer } from './pacer'

/**
 * An endpoint that takes a body: `parse` validates it (throwing ApiError), `run` makes the queue
 * call and answers. Split so that a throttled request is validated at once and run in its slot.
 */
export interface Operation<Input> {
  parse(fields: Record<string, unknown>): Input
  run(ex: Exchange, input: Input): void
  pacer: Pacer | undefined
  /** Whether it changes the queue (refused while the journal is broken). */
  changes: boolean
  /** A receive: a job it cannot deliver goes back, so a client that leaves undoes it. */
  undoneIfUndelivered?: true
}
