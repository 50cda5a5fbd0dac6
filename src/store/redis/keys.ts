import { hash, timingSafeEqual } from 'node:crypto'
import { Job } from '../../queue/job'
import { stampOf } from '../../queue/stamp'

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

/**
 * Job hashes, 40 hex digits: the lane's id (8), the job's member in its lane (12) and a tag (20):
 * the first 80 bits of an HMAC-SHA256 of the other 20 under a secret kept in Redis. Any frontend
 * finds a job from its hash alone, with no index (lane id -> lane, member -> job), and a hash that
 * was not made here is refused without a Redis call. Imported jobs keep their old hash (a record
 * field, and an index used only when the tag does not verify).
 */
export class HashCodec {
  /** HMAC-SHA256's padded keys, ready for the 20 hex digits of a body and for the inner digest. */
  private readonly inner = Buffer.alloc(64 + 20)
  private readonly outer = Buffer.alloc(64 + 32)

  constructor(secret: Buffer) {
    // HMAC (RFC 2104) from two one-shot digests: createHmac makes a native object per call, which
    // cost more than the digests at a hash per job scheduled, taken and acked. Keys over 64
    // bytes would be hashed first; the secret is 32.
    if (secret.length > 64) throw new Error('the hash secret must be at most 64 bytes')
    for (let i = 0; i < 64; i++) {
      this.inner[i] = (secret[i] ?? 0) ^ 0x36
      this.outer[i] = (secret[i] ?? 0) ^ 0x5c
    }
  }

  encode(laneId: string, member: string): string {
    return laneId + member + this.tag(laneId + member)
  }

  /** The lane id and member a hash names, or undefined when it is not one of ours. */
  decode(hash: string): { laneId: string; member: string } | undefined {
    if (!/^[0-9a-f]{40}$/.test(hash)) return undefined
    const body = hash.slice(0, 20)
    const expected = Buffer.from(this.tag(body), 'latin1')
    if (!timingSafeEqual(expected, Buffer.from(hash.slice(20), 'latin1'))) return undefined
    return { laneId: hash.slice(0, 8), member: hash.slice(8, 20) }
  }

  private tag(body: string): string {
    this.inner.write(body, 64, 'latin1')
    hash('sha256', this.inner, 'buffer').copy(this.outer, 64)
    return hash('sha256', this.outer, 'hex').slice(0, 20)
  }
}

/** A job record's fields: `job_num|created|priority|attempts|hash|message`. */
export function encodeRecord(job: { jobNum: number; created: number; priority: number; attempts: number; hash: string }, message: string): string {
  return `${job.jobNum}|${job.created}|${job.priority}|${job.attempts}|${job.hash}|${message}`
}

/** A Job from its record; `hashOf` gives the hash of a job scheduled here (no hash in the record). */
export function decodeRecord(record: string, lane: string, hashOf: () => string): Job {
  let at = 0
  const fields: string[] = []
  for (let i = 0; i < 5; i++) {
    const bar = record.indexOf('|', at)
    fields.push(record.slice(at, bar))
    at = bar + 1
  }
  const [num, created, priority, attempts, hash] = fields as [string, string, string, string, string]
  const job = new Job(Number(num), stampOf(lane, Number(priority), Number(created)), record.slice(at), hash === '' ? hashOf() : hash)
  job.attempts = Number(attempts)
  return job
}
