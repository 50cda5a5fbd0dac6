/**
 * How jobs are handed out over Redis: single takes (a parked receiver's registers this frontend as
 * waiting in the same script: wakeups.ts), batch takes, the receives of one lane in one turn that do
 * not wait sharing one script (coalesce.ts), and the put-back of a hand-over that failed. Leases
 * a take finds expired are kept here for the next sweep to report.
 */
import { randomBytes } from 'node:crypto'
import { OutcomeUnknown } from '../../errors'
import { Held } from '../../queue/held'
import type { Job } from '../../queue/job'
import type { Taken } from '../job-store'
import { Coalescer, ownError } from './coalesce'
import { encodeRecord } from './records'
import type { RedisSession, Reply } from './session'
import type { Wakeups } from './wakeups'

export class Receiving {
  /** Receives of one lane (and lease length) in one turn that do not wait: one script (coalesce.ts). */
  readonly coalescer = new Coalescer((_, takes: { lane: string; leaseMs: number | undefined }[]) => this.takeEach(takes), ownError)
  private readonly tokenPrefix = `${randomBytes(4).toString('hex')}-`
  private tokens = 0
  /** Leases found expired by takes, reported by the next sweep (the job log's "job put back"). */
  private expiredByTakes: Job[] = []

  constructor(
    private readonly session: RedisSession,
    private readonly wakeups: Wakeups,
  ) {}

  /**
   * Takes the lane's next job. `waiting`: receivers of this frontend still parked on the lane
   * besides this one (undefined for a receive that does not wait): when the lane is empty the
   * frontend is registered as waiting in the same script, so the next job scheduled names it.
   */
  async take(lane: string, leaseMs: number | undefined, waiting?: number): Promise<Taken | undefined> {
    try {
      // Receives that do not wait, of a lane without a runner's bound: those of one turn share a script.
      if (waiting === undefined && !this.session.isRunnerLane(lane)) return await this.coalescer.add(`${leaseMs ?? ''}:${lane}`, { lane, leaseMs })
      return await this.takeFrom(lane, leaseMs, waiting)
    } catch (err) {
      // Polled again within a second (and at once when Redis is back), not retried in a loop.
      this.wakeups.failed(lane)
      throw err
    }
  }

  private async takeFrom(lane: string, leaseMs: number | undefined, waiting: number | undefined): Promise<Taken | undefined> {
    const { epoch, after, knownId } = await this.beforeTake(lane, waiting)
    const concurrency = this.session.options.runnerLanes?.get(lane)
    const token = leaseMs === undefined ? '' : `${this.tokenPrefix}${(++this.tokens).toString(36)}`
    const reply = await this.session.laneCall(lane, 'take', [leaseMs ?? 0, token, waiting === undefined ? '0' : '1', concurrency?.() ?? 0, concurrency === undefined ? '0' : '1', after], 'change')
    const laneId = knownId ?? (reply[0] === 1 || reply.length > 3 ? await this.laneIdAfterTake(lane) : undefined)
    if (reply[0] === 0) {
      this.noteExpired(reply, 3, lane, laneId)
      const [, deadline, now] = reply as [number, number, number]
      this.foundNothing(lane, epoch, waiting, deadline, now)
      return undefined
    }
    this.noteExpired(reply, 5, lane, laneId)
    const [, member, record, at] = reply as [number, string, string, number]
    const job = this.session.job(record, lane, laneId!, member)
    if (leaseMs === undefined) return { job, lease: undefined }
    return { job, lease: new Held(job, at, leaseMs, Buffer.byteLength(job.message), token) }
  }

  /** The next jobs for `takes` receives (one lane, one lease length): one each, in order, while there are. */
  private async takeEach(takes: { lane: string; leaseMs: number | undefined }[]): Promise<(Taken | undefined)[]> {
    const { lane, leaseMs } = takes[0]!
    if (takes.length === 1) return [await this.takeFrom(lane, leaseMs, undefined)]
    const taken: (Taken | undefined)[] = await this.takeMany(lane, leaseMs, takes.length)
    while (taken.length < takes.length) taken.push(undefined)
    return taken
  }

  /**
   * Up to `count` jobs at once (batch receives), each under its own lease when leased. With
   * `waiting` set (a parked batch receiver) nothing is taken unless `min` are ready, and the
   * frontend is registered as waiting then, as `take` does.
   */
  async takeMany(lane: string, leaseMs: number | undefined, count: number, min = 1, waiting?: number): Promise<Taken[]> {
    try {
      const { epoch, after, knownId } = await this.beforeTake(lane, waiting)
      const tokens = `${this.tokenPrefix}${(++this.tokens).toString(36)}`
      const reply = await this.session.laneCall(lane, 'takeMany', [leaseMs ?? 0, tokens, count, waiting === undefined ? 1 : min, waiting === undefined ? '0' : '1', after], 'change')
      const n = reply[2] as number
      const laneId = knownId ?? (reply.length > 4 ? await this.laneIdAfterTake(lane) : undefined)
      this.noteExpired(reply, 4 + 2 * n, lane, laneId)
      const now = reply[1] as number
      if (reply[0] === 0) {
        this.foundNothing(lane, epoch, waiting, reply[3] as number, now)
        return []
      }
      const taken: Taken[] = []
      for (let k = 0; k < n; k++) {
        const job = this.session.job(reply[5 + 2 * k] as string, lane, laneId!, reply[4 + 2 * k] as string)
        taken.push({ job, lease: leaseMs === undefined ? undefined : new Held(job, now + leaseMs, leaseMs, Buffer.byteLength(job.message), `${tokens}.${k + 1}`) })
      }
      if (n < count) this.wakeups.foundEmpty(lane, epoch, false)
      return taken
    } catch (err) {
      this.wakeups.failed(lane)
      throw err
    }
  }

  /**
   * What a take (single or batch) needs before its script runs. A take for a parked receiver
   * (`waiting` set) may register this frontend as waiting, so it first subscribes to the lane's
   * wake-ups for this frontend; the lane's hint epoch is read then (a hint after it keeps the lane
   * from being marked idle). `after`: what the script does with this frontend among the lane's
   * waiting once it took a job (more receivers wait here: 'add'; none: 'drop'). The lane's id is
   * needed for the hashes of what the take hands out: read before the take (undefined: the lane has
   * no job yet), since once the take has run a failure to read it loses the jobs.
   */
  private async beforeTake(lane: string, waiting: number | undefined): Promise<{ epoch: number; after: 'keep' | 'add' | 'drop'; knownId: string | undefined }> {
    this.session.hashes()
    const keys = this.session.lanes.keys(lane)
    if (waiting !== undefined) await this.wakeups.subscribe(lane, keys.channel + this.session.frontend)
    const epoch = this.wakeups.epoch(lane)
    const after = waiting === undefined ? 'keep' : waiting > 0 ? 'add' : 'drop'
    const knownId = await this.session.call(() => this.session.lanes.idOf(this.session.client, lane), 'read')
    return { epoch, after, knownId }
  }

  /**
   * A take found nothing to hand out. For a parked receiver's take (which registered this frontend)
   * the lane waits for a hint, and for the lane's next deadline (`deadline`, Redis's clock, whose
   * time was `now`; -1: none), when a lease or a delay ends.
   */
  private foundNothing(lane: string, epoch: number, waiting: number | undefined, deadline: number, now: number): void {
    this.wakeups.foundEmpty(lane, epoch, waiting !== undefined)
    if (deadline >= 0 && waiting !== undefined) this.wakeups.armDeadline(lane, Date.now() + (deadline - now))
  }

  /** The id of a lane made while a take ran (rare); a failure now is a take made whose jobs are lost to this reply. */
  private async laneIdAfterTake(lane: string): Promise<string> {
    try {
      return (await this.session.lanes.idOf(this.session.client, lane))!
    } catch (err) {
      throw new OutcomeUnknown(`the job store (Redis) is unavailable (${(err as Error).message}); jobs were taken but could not be answered (leased ones come back when their leases end)`)
    }
  }

  private noteExpired(reply: Reply, from: number, lane: string, laneId: string | undefined): void {
    if (laneId === undefined) return
    this.expiredByTakes.push(...this.session.jobs(reply, from, lane, laneId))
  }

  /** The leases takes found expired since the last call (the sweep reports them). */
  expiredSinceLastSweep(): Job[] {
    const expired = this.expiredByTakes
    this.expiredByTakes = []
    return expired
  }

  /** Expired leases a sweep that failed could not report: the next one does. */
  reportAtNextSweep(leases: Job[]): void {
    this.expiredByTakes.push(...leases)
  }

  async returnUndelivered({ job, lease }: Taken): Promise<boolean> {
    const member = this.session.memberOf(job)
    const hash = this.session.hashes().decode(job.hash) === undefined ? job.hash : ''
    const record = encodeRecord({ jobNum: job.jobNum, created: job.created, priority: job.priority, attempts: job.attempts, hash }, job.message)
    const args = lease === undefined ? [member, '', record] : [member, lease.token]
    const back = ((await this.session.laneCall(job.lane, 'putBack', args, 'change')) as unknown) === 1
    if (back) this.wakeups.work(job.lane)
    return back
  }
}
