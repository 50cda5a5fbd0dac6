import { type Client, Script } from './connection'
import { META_SCRIPTS } from './lua/meta'

/** Job numbers a frontend takes from the shared counter at once. */
const BLOCK = 1000

/**
 * Job numbers: one counter on the meta slot, handed to each frontend in blocks of 1000, so the
 * meta slot is touched once per 1000 jobs, not once per schedule. Numbers are unique and grow
 * forever, and each frontend's grow in the order it schedules; across frontends they are not a
 * real-time order (serving order never depends on them: it is the lane's own sequence). A batch
 * gets consecutive numbers (from a block of its own size when it is larger than a block).
 */
export class JobNumbers {
  private nextNum = 0
  private end = 0
  private pending: Promise<void> | undefined

  private readonly floor = new Script(META_SCRIPTS.jobNumFloor)

  constructor(private readonly key: string) {}

  /**
   * After a (re)connect: Redis may have come back without the counter. It is raised above every
   * number of this frontend's block, so blocks taken from now on (by any frontend) repeat none.
   */
  async reconnected(client: Client): Promise<void> {
    if (this.end > 0) await this.floor.run(client, [this.key], [this.end])
  }

  /** The number the next job scheduled here will get, as far as this frontend knows. */
  get next(): number {
    return this.nextNum < this.end ? this.nextNum : this.end + 1
  }

  /**
   * The first of `n` consecutive numbers. Numbers go in the order of the calls: behind a call that
   * waits for a block, the next ones wait too (rather than take what is left of the block), and they
   * resume in that order, so the schedules of one lane are gathered (coalesce.ts) in the order they
   * came and numbered in it.
   */
  async take(client: Client, n: number): Promise<number> {
    for (;;) {
      if (this.pending === undefined && this.end - this.nextNum >= n) {
        const first = this.nextNum
        this.nextNum += n
        return first
      }
      // A batch larger than a block gets a block of its own size (what was left of the last is skipped).
      const size = Math.max(n, BLOCK)
      this.pending ??= client
        .incrby(this.key, size)
        .then((last) => {
          this.nextNum = last - size + 1
          this.end = last + 1
        })
        .finally(() => (this.pending = undefined))
      await this.pending
    }
  }
}
