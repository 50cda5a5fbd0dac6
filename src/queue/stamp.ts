import type { HashScheme } from './hash'

/**
 * What runs of jobs have in common: their lane, their priority, the second they were created and
 * the scheme that derives their hashes from their numbers. Jobs scheduled together share one Stamp
 * instead of carrying these fields each, which saves 24 bytes a job (Node 20 has no pointer
 * compression: a field is 8 bytes), and millions may wait.
 *
 * Two stamps with the same fields may be distinct objects (the tables below forget old ones), so
 * compare stamps by their fields, never by identity.
 */
export class Stamp {
  constructor(
    readonly lane: string,
    readonly priority: number,
    readonly created: number,
    /** Null: this process's scheme. Restored jobs scheduled by an earlier process have its scheme (see HashSchemes). */
    readonly scheme: HashScheme | null,
  ) {}
}

/** At most this many priorities are remembered per lane; past it, the table starts afresh. */
const MAX_PRIORITIES = 4096

/**
 * This many priorities a lane remembers though it has no ready job of them: a lane that is drained
 * as fast as it fills (the usual case) keeps its few stamps instead of making one a job, and an idle
 * lane holds no more than these (about 1.5 KB).
 */
const KEPT_IDLE = 16

/**
 * One lane's current stamps, by priority: the stamp of the latest second (and scheme) asked for each. Jobs of a
 * priority scheduled in one second get the same stamp; when the second changes, a new one replaces
 * it, and the old one lives as long as its jobs. A priority is forgotten once the lane has no ready
 * job of it (see Lane), past the few kept: priorities that are deadlines in seconds are all
 * distinct, and kept, 4,096 a lane over 1,024 lanes held 386 MB of an empty daemon. The table is
 * capped too, so a lane that sees every priority in turn holds no more than that.
 */
export class LaneStamps {
  private byPriority = new Map<number, Stamp>()

  constructor(readonly lane: string) {}

  of(priority: number, created: number, scheme: HashScheme | null = null): Stamp {
    const stamp = this.byPriority.get(priority)
    if (stamp !== undefined && stamp.created === created && stamp.scheme === scheme) return stamp
    if (this.byPriority.size >= MAX_PRIORITIES) this.byPriority = new Map()
    const made = new Stamp(this.lane, priority, created, scheme)
    this.byPriority.set(priority, made)
    return made
  }

  /** The lane has no ready job of `priority` left: its stamp is its jobs' own business now (past KEPT_IDLE). */
  forget(priority: number): void {
    if (this.byPriority.size > KEPT_IDLE) this.byPriority.delete(priority)
  }
}

/**
 * A stamp of its own, for jobs not kept by the thousand in a lane (a Redis store's jobs in flight,
 * tests): no table keeps it, so it goes with its job. The queue asks its lanes' tables.
 */
export function stampOf(lane: string, priority: number, created: number, scheme: HashScheme | null = null): Stamp {
  return new Stamp(lane, priority, created, scheme)
}
