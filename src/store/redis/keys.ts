/**
 * A lane's keys, in the order every lane script binds them (lua/prelude.ts: R, J, M, … UG). Members
 * are the lane's sequence numbers (12 hex digits); times are the Redis server's, in ms.
 *
 *   r     ready jobs: ZSET member -> priority (serving order: priority, then member)
 *   j     job records: HASH member -> record, and '#<job number>' -> member (GET /job?job_num)
 *   m     the lane's own fields: HASH seq, jobs, bytes, forgotten, paused
 *   l     leases (runs, on runner lanes): ZSET member -> deadline
 *   x     lease holders: HASH member -> 'lease ms|token'
 *   d     delayed jobs: ZSET member -> when ready
 *   dead  dead jobs: ZSET member -> when they died
 *   done  succeeded jobs kept: ZSET member -> when forgotten
 *   rep   run reports: HASH member -> JSON
 *   w     frontends waiting for work: ZSET frontend id -> since when
 *   u     unique keys held: HASH key -> 'member|job_num|until' (until '' while the job is queued or out)
 *   uk    the key of each job that holds one: HASH member -> 'unique_for ms|key'
 *   ue    unique keys held past their job's end: ZSET key -> until
 *   res   results of succeeded jobs: HASH member -> JSON
 *   wt    watched jobs (someone waits for their end): ZSET member -> until
 *   we    ends of watched jobs: HASH member -> state, member:rec, member:res
 *   ug    jobs taken for good whose key record (uk) is kept a minute for a put-back: ZSET member -> until
 */
export const LANE_KEY_SUFFIXES = ['r', 'j', 'm', 'l', 'x', 'd', 'dead', 'done', 'rep', 'w', 'u', 'uk', 'ue', 'res', 'wt', 'we', 'ug'] as const

/**
 * Key names. Every key of a lane carries the hash tag `{lane}` (with `{`, `}` and `%` written as
 * %7B, %7D and %25, so a lane's name can never end its tag early): all of them are in one hash slot,
 * so each lane operation is one atomic script on one shard, and lanes spread over the shards.
 * The few global keys share the tag `{meta}` (a lane named "meta" is tagged `{meta}` too, and that
 * is harmless: its keys are other names in the same slot).
 */
export class LaneKeys {
  /** The lane's keys in the order the scripts expect. */
  readonly keys: string[]
  /** The lane's wake-up channels: this prefix and a frontend's id (same slot as the keys). */
  readonly channel: string

  constructor(
    prefix: string,
    readonly lane: string,
  ) {
    const tagged = `${prefix}:{${lane.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}}`
    this.keys = LANE_KEY_SUFFIXES.map((suffix) => `${tagged}:${suffix}`)
    this.channel = `${tagged}:wake:`
  }
}

export function metaKey(prefix: string, name: 'job_num' | 'lanes' | 'lane_ids' | 'secret' | 'foreign' | 'sweep'): string {
  return `${prefix}:{meta}:${name}`
}
