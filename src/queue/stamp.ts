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
 * One lane's current stamps, by priority: the stamp of the latest second (and scheme) asked for each. Jobs of a
 * priority scheduled in one second get the same stamp; when the second changes, a new one replaces
 * it, and the old one lives as long as its jobs. The table is capped, so a lane that sees every
 * priority in turn holds no more than that.
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
}

/** At most this many lanes' tables are kept for `stampOf`; past it, it starts afresh. */
const MAX_LANES = 1024
let lanes = new Map<string, LaneStamps>()

/**
 * A stamp for callers that have no Lane at hand (moves, stores that build jobs, tests): the same
 * sharing, through a table of lane names. The queue asks its lanes' own tables.
 */
export function stampOf(lane: string, priority: number, created: number, scheme: HashScheme | null = null): Stamp {
  let stamps = lanes.get(lane)
  if (stamps === undefined) {
    if (lanes.size >= MAX_LANES) lanes = new Map()
    stamps = new LaneStamps(lane)
    lanes.set(lane, stamps)
  }
  return stamps.of(priority, created, scheme)
}
