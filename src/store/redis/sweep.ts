/**
 * The sweep over Redis: once a second one frontend (whichever takes the turn, by SET NX on the meta
 * slot) moves every lane's expired leases and ended delays back and wakes the frontends waiting
 * there; leases that takes found expired meanwhile are reported with them (and by the next sweep
 * when this one fails).
 */
import { randomBytes } from 'node:crypto'
import type { Expired } from '../job-store'
import { metaKey } from './keys'
import type { Receiving } from './receiving'
import type { RedisSession } from './session'
import type { Wakeups } from './wakeups'

/** How often one frontend (whichever takes the turn) moves what is due back into every lane. */
export const SWEEP_MS = 1000
/** Expired leases and ended delays one script moves at most (the rest: the next call). */
const REAP_LIMIT = 1000

export class Sweep {
  private readonly sweepToken = randomBytes(8).toString('hex')

  constructor(
    private readonly session: RedisSession,
    private readonly wakeups: Wakeups,
    private readonly receiving: Receiving,
  ) {}

  /**
   * The sweep: one frontend a second (SET NX on the meta slot) moves every lane's expired leases
   * and ended delays back to their place and wakes the frontends waiting there. Leases a take
   * found expired are reported here too.
   */
  async expireDue(): Promise<Expired> {
    const expired: Expired = { leases: this.receiving.expiredSinceLastSweep(), lanes: new Set() }
    // While Redis is down there is nothing to sweep (and nothing to log every second): GET / says why.
    if (this.session.codec === undefined || this.session.connection.state !== 'up') return expired
    try {
      const turn = await this.session.call(() => this.session.client.set(metaKey(this.session.options.prefix, 'sweep'), this.sweepToken, 'PX', SWEEP_MS - 100, 'NX'), 'change')
      if (turn === null) return expired
      // Every lane's reap ends before a failure is thrown: what the others found is reported.
      const reaped = await Promise.allSettled(
        this.session.lanes.lanes().map(async (lane) => {
          const laneId = this.session.lanes.cachedId(lane)!
          for (let rounds = 0; rounds < 10; rounds++) {
            const reply = await this.session.laneCall(lane, 'reap', [REAP_LIMIT], 'change')
            expired.leases.push(...this.session.jobs(reply, 1, lane, laneId))
            if ((reply[0] as number) === 0) break
            expired.lanes.add(lane)
            this.wakeups.work(lane)
            if ((reply[0] as number) < REAP_LIMIT) break
          }
        }),
      )
      const failed = reaped.find((outcome) => outcome.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    } catch (err) {
      // What was found so far is back in its lanes already: the next sweep reports it.
      this.receiving.reportAtNextSweep(expired.leases)
      throw err
    }
    return expired
  }
}
