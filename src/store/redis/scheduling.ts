/**
 * How jobs are queued over Redis: schedules of one lane in one turn share one script (coalesce.ts),
 * a batch over several lanes is atomic per lane and says which of its jobs are queued when one lane
 * fails; schedules with unique keys or waits go through their own script, and a waited job's end
 * is read back from any frontend.
 */
import { ApiError } from '../../errors'
import { Job } from '../../queue/job'
import type { ScheduleInput } from '../../queue/queue'
import { stampOf } from '../../queue/stamp'
import { UniqueHold } from '../../queue/unique'
import { notOffered } from '../job-store'
import { Coalescer, ownError } from './coalesce'
import { storeError } from './connection'
import { encodeRecord } from './records'
import type { RedisSession } from './session'
import type { Wakeups } from './wakeups'

export class Scheduling {
  /** Schedules of one lane in one turn: one script (coalesce.ts). */
  readonly coalescer = new Coalescer((lane, groups: { input: ScheduleInput; jobNum: number }[][]) => this.scheduleGroups(lane, groups), ownError)

  constructor(
    private readonly session: RedisSession,
    private readonly wakeups: Wakeups,
  ) {}

  /**
   * Schedules by lane, one script per lane (atomic per lane); job numbers from this frontend's
   * block. Schedules of one lane made in the same turn share that script (coalesce.ts), each
   * keeping its jobs together and in the order of their numbers.
   */
  async schedule(inputs: readonly ScheduleInput[]): Promise<Job[]> {
    refuseGroups(inputs)
    this.session.hashes()
    const lanes = [...indexesByLane(inputs)].map(([lane, indexes]) => ({ lane, indexes, bytes: indexes.reduce((n, i) => n + Buffer.byteLength(inputs[i]!.message), 0) }))
    // The limits count these jobs at once: the next request may be admitted before they are queued.
    for (const { indexes, bytes } of lanes) this.session.tally.queued(indexes.length, bytes)
    let first: number
    try {
      first = await this.session.call(() => this.session.numbers.take(this.session.client, inputs.length), 'change')
    } catch (err) {
      for (const { indexes, bytes } of lanes) this.session.tally.settled(indexes.length, bytes, false)
      throw err
    }
    const jobs: Job[] = new Array<Job>(inputs.length)
    const outcomes = await Promise.allSettled(
      lanes.map(async ({ lane, indexes, bytes }) => {
        const group = indexes.map((i) => ({ input: inputs[i]!, jobNum: first + i }))
        const placed = this.coalescer.add(lane, group, group.length, bytes)
        placed.then(
          () => this.session.tally.settled(indexes.length, bytes, true),
          () => this.session.tally.settled(indexes.length, bytes, false),
        )
        const { laneId, seq, now } = await placed
        indexes.forEach((i, k) => {
          const input = inputs[i]!
          const member = (seq + k).toString(16).padStart(12, '0')
          const job = new Job(first + i, stampOf(lane, input.priority, Math.floor(now / 1000)), input.message, this.session.hashes().encode(laneId, member))
          this.session.members.set(job, member)
          if ((input.delayMs ?? 0) > 0) job.notBefore = now + input.delayMs!
          jobs[i] = job
        })
        this.wakeups.work(lane)
      }),
    )
    const failed = outcomes.find((o) => o.status === 'rejected')
    if (failed === undefined) return jobs
    throw partlyQueued(
      lanes.filter((_, k) => outcomes[k]!.status === 'fulfilled').flatMap(({ indexes }) => indexes),
      failed.reason,
    )
  }

  /** One schedule script for the groups of jobs (one per caller) of one lane; each group's first lane sequence. */
  private async scheduleGroups(lane: string, groups: { input: ScheduleInput; jobNum: number }[][]): Promise<{ laneId: string; seq: number; now: number }[]> {
    const laneId = await this.session.call(() => this.session.lanes.ensure(this.session.client, lane), 'change')
    const args: (string | number)[] = [0]
    for (const group of groups) for (const { input, jobNum } of group) args.push(input.priority, jobNum, input.delayMs ?? 0, input.message)
    args[0] = (args.length - 1) / 4
    const [seq, now] = (await this.session.laneCall(lane, 'schedule', args, 'change')) as [number, number]
    let offset = 0
    return groups.map((group) => {
      const start = seq + offset
      offset += group.length
      return { laneId, seq: start, now }
    })
  }

  /**
   * As `schedule`, with unique keys: one script per lane checks and takes each key with its job
   * (so two frontends scheduling one key at once queue it once). An input with `watchMs` has its
   * job (or the job holding its key) watched: its end is kept for `waitedEnd`.
   */
  async scheduleUnique(inputs: readonly ScheduleInput[]): Promise<(Job | UniqueHold)[]> {
    refuseGroups(inputs)
    this.session.hashes()
    const first = await this.session.call(() => this.session.numbers.take(this.session.client, inputs.length), 'change')
    const outcomes = new Array<Job | UniqueHold>(inputs.length)
    const lanes = [...indexesByLane(inputs)]
    const settled = await Promise.allSettled(
      lanes.map(async ([lane, indexes]) => {
        const laneId = await this.session.call(() => this.session.lanes.ensure(this.session.client, lane), 'change')
        const args: (string | number)[] = [indexes.length]
        for (const i of indexes) {
          const { priority, delayMs, message, unique, watchMs } = inputs[i]!
          args.push(priority, first + i, delayMs ?? 0, message, unique?.key ?? '', Math.round(unique?.forMs ?? 0), Math.round(watchMs ?? 0))
        }
        const reply = await this.session.laneCall(lane, 'scheduleUnique', args, 'change')
        const now = reply[0] as number
        let queued = 0
        let bytes = 0
        indexes.forEach((i, k) => {
          const input = inputs[i]!
          const [kind, member, jobNum, until] = reply.slice(1 + 4 * k, 5 + 4 * k) as [number, string, string, string]
          if (kind === 0) {
            outcomes[i] = new UniqueHold(lane, input.unique!.key, this.session.hashes().encode(laneId, member), Number(jobNum), until === '' ? Infinity : Number(until), undefined)
            return
          }
          const job = this.session.job(encodeRecord({ jobNum: first + i, created: Math.floor(now / 1000), priority: input.priority, attempts: 0, hash: '' }, input.message), lane, laneId, member)
          if ((input.delayMs ?? 0) > 0) job.notBefore = now + input.delayMs!
          outcomes[i] = job
          queued++
          bytes += Buffer.byteLength(input.message)
        })
        if (queued === 0) return
        this.session.tally.added(queued, bytes)
        this.wakeups.work(lane)
      }),
    )
    const failed = settled.find((o) => o.status === 'rejected')
    if (failed === undefined) return outcomes
    // Of the lanes that answered, the jobs queued (not those whose key another job holds).
    throw partlyQueued(
      lanes.filter((_, k) => settled[k]!.status === 'fulfilled').flatMap(([, indexes]) => indexes.filter((i) => outcomes[i] instanceof Job)),
      failed.reason,
    )
  }

  /** How a watched job ended, if it did (on any frontend). */
  async waitedEnd(hash: string): Promise<{ job: Job; state: 'succeeded' | 'dead' | 'taken' | 'deleted' } | undefined> {
    const place = await this.session.locate(hash)
    if (place === undefined) return undefined
    const reply = await this.session.laneCall(place.lane, 'ended', [place.member], 'read')
    if (reply[0] !== 1) return undefined
    const [, state, record, result] = reply as [number, 'succeeded' | 'dead' | 'taken' | 'deleted', string, string | null]
    const job = this.session.job(record, place.lane, place.laneId, place.member)
    if (result !== null) job.result = result
    return { job, state }
  }

  unwatch(hash: string): void {
    // Best effort: a watch nobody ends here is dropped by the sweep when its wait is over.
    void this.session.locate(hash)
      .then((place) => (place === undefined ? undefined : this.session.laneCall(place.lane, 'unwatch', [place.member], 'change')))
      .catch(() => undefined)
  }
}

/**
 * The error of a batch some of whose lanes failed. A batch is atomic per lane only: the client must
 * learn which jobs are queued (`made`, their indexes in the batch), or a resend queues them twice.
 */
function partlyQueued(made: number[], reason: unknown): unknown {
  if (made.length === 0) return reason
  const err = storeError(reason, 'change')
  const queued = made.sort((x, y) => x - y).map((i) => `jobs[${i}]`).join(', ')
  return new ApiError(err instanceof ApiError ? err.codeName : 'internal', `${queued} of the batch ${made.length === 1 ? 'is' : 'are'} queued (a batch over several lanes is atomic per lane only); for the others: ${err.message}`)
}

/** Fair groups keep their turns in one process: over Redis a schedule with "group" is refused (code 15). */
function refuseGroups(inputs: readonly ScheduleInput[]): void {
  if (inputs.some((input) => input.group !== undefined)) throw notOffered('"group" (fair groups within a lane)', 'redis')
}

/** The inputs' indexes by lane, in order: one script per lane. */
function indexesByLane(inputs: readonly ScheduleInput[]): Map<string, number[]> {
  const byLane = new Map<string, number[]>()
  inputs.forEach((input, i) => {
    const indexes = byLane.get(input.lane)
    if (indexes === undefined) byLane.set(input.lane, [i])
    else indexes.push(i)
  })
  return byLane
}
