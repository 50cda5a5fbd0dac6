/**
 * How a lease ends or goes on over Redis: acks (those of one lane in one turn share a script:
 * coalesce.ts), releases and touches by a consumer holding the lease's token, and a run's end on a
 * runner lane (succeeded, dead, retried). Each script checks the lease named is the one in force.
 */
import { ApiError } from '../../errors'
import { Held } from '../../queue/held'
import type { Job, RunReport } from '../../queue/job'
import { Coalescer, ownError } from './coalesce'
import type { RedisSession, Reply } from './session'
import type { Wakeups } from './wakeups'

/** One ack's arguments to the ack script: member, token, result ('' for none), keep ms, succeeded jobs kept at most. */
type AckArgs = [string, string, string, number, number]

export class Leases {
  /** Acks of one lane in one turn: one script (coalesce.ts). */
  readonly coalescer = new Coalescer((lane, acks: AckArgs[]) => this.ackEach(lane, acks), ownError)

  constructor(
    private readonly session: RedisSession,
    private readonly wakeups: Wakeups,
  ) {}

  /** Runs a lease script (ack, release, touch) on the job `hash` names; ApiError when no such lease is in force. */
  private async onLease(name: 'ack' | 'release' | 'touch', hash: string, token: string, extra: (lane: string) => (string | number)[]): Promise<{ job: Job; reply: Reply }> {
    const place = await this.session.locate(hash)
    if (place === undefined) throw notLeased(hash)
    const args: (string | number)[] = [place.member, token, ...extra(place.lane)]
    const reply = name === 'ack' ? await this.coalescer.add(place.lane, args as AckArgs, ackSize(args as AckArgs)) : await this.session.laneCall(place.lane, name, args, 'change')
    const record = reply[1] as string | null
    if (reply[0] === 1) return { job: this.session.job(record!, place.lane, place.laneId, place.member, hash), reply }
    if (reply[0] === 0 || record === null) throw notLeased(hash)
    const job = this.session.job(record, place.lane, place.laneId, place.member)
    if (this.session.isRunnerLane(place.lane)) {
      throw new ApiError('conflict', `job ${job.jobNum} is running on lane ${JSON.stringify(place.lane)}; its runner acks or releases it, not a consumer`)
    }
    throw new ApiError('not_leased', `job ${job.jobNum} is not leased under lease_token ${JSON.stringify(token)}: that lease ended (it expired or was released) and the job was leased again`)
  }

  /** Acks of one lane: one script (several when coalesced); each ack's reply as a lone ack would get it. */
  private async ackEach(lane: string, acks: AckArgs[]): Promise<Reply[]> {
    const reply = await this.session.laneCall(lane, 'ack', [acks.length, ...acks.flat()], 'change')
    return acks.map((_, i) => reply.slice(2 * i, 2 * i + 2))
  }

  /** `result`: the job is kept as succeeded, with it, for its lane's keep_finished (readable from every frontend). */
  async ack(hash: string, token: string, result?: string): Promise<Job> {
    const history = this.session.options.history
    const keep = (lane: string): number => (result === undefined ? 0 : (history?.keepFinishedMs(lane) ?? 0))
    const { job } = await this.onLease('ack', hash, token, (lane) => [result ?? '', keep(lane), history?.maxFinished ?? 0])
    if (result !== undefined) job.result = result
    this.session.tally.removed(1, Buffer.byteLength(job.message))
    return job
  }

  async release(hash: string, token: string, delayMs: number): Promise<Job> {
    const { job, reply } = await this.onLease('release', hash, token, () => [delayMs])
    if (delayMs > 0) job.notBefore = reply[2] as number
    else this.wakeups.work(job.lane)
    return job
  }

  async touch(hash: string, token: string, leaseMs: number | undefined): Promise<Held> {
    const { job, reply } = await this.onLease('touch', hash, token, () => [leaseMs ?? ''])
    return new Held(job, reply[2] as number, reply[3] as number, Buffer.byteLength(job.message), token)
  }

  /** A run's end: its lease must still be the job's, or ApiError not_leased. */
  private async finish(lease: Held, kind: 'ok' | 'dead' | 'retry', report: RunReport | undefined, delayMs: number, result?: string): Promise<Job> {
    const { job } = lease
    const history = this.session.options.history
    const keepMs = kind === 'ok' ? (history?.keepFinishedMs(job.lane) ?? 0) : 0
    const args = [this.session.memberOf(job), lease.token, kind, job.attempts, report === undefined ? '' : JSON.stringify(report), keepMs, history?.maxFinished ?? 0, delayMs, result ?? '']
    const reply = await this.session.laneCall(job.lane, 'finish', args, 'change')
    if (reply[0] !== 1) throw new ApiError('not_leased', `the lease on job ${job.jobNum} ended before its run did`)
    job.report = report
    if (result !== undefined) job.result = result
    if (kind === 'retry') {
      if (delayMs > 0) job.notBefore = (reply[2] as number) + delayMs
      else this.wakeups.work(job.lane)
    }
    return job
  }

  complete(lease: Held, report: RunReport, result?: string): Promise<Job> {
    return this.finish(lease, 'ok', report, 0, result)
  }

  bury(lease: Held, report: RunReport): Promise<Job> {
    return this.finish(lease, 'dead', report, 0)
  }

  retryLater(lease: Held, delayMs: number): Promise<Job> {
    return this.finish(lease, 'retry', lease.job.report, delayMs)
  }
}

function notLeased(hash: string): ApiError {
  return new ApiError('not_leased', `no leased job has hash ${JSON.stringify(hash)} (never leased, already acked or released, or its lease expired)`)
}

/** What an ack weighs in a coalesced call: one, and one more per KiB of its result (a call's size stays bounded). */
function ackSize(args: AckArgs): number {
  return 1 + Math.floor(args[2].length / 1024)
}
