/**
 * What operators do to jobs over Redis, by hash: move a job within its lane (a new priority),
 * retry a dead job, delete a job. One script each, on the job's lane.
 */
import { ApiError } from '../../errors'
import type { Job } from '../../queue/job'
import type { RedisSession } from './session'
import type { Wakeups } from './wakeups'

export class Operators {
  constructor(
    private readonly session: RedisSession,
    private readonly wakeups: Wakeups,
  ) {}

  /**
   * POST /move: a new priority within the job's lane, in one script. Another lane: ApiError
   * not_supported (the lanes' keys are in different hash slots, so no one script could move the
   * job atomically, and its hash names its lane).
   */
  async relocate(hash: string, lane: string, priority: number): Promise<Job> {
    const place = await this.session.locate(hash)
    if (place === undefined) throw new ApiError('job_not_found', `no queued or delayed job has hash ${JSON.stringify(hash)}`)
    if (place.lane !== lane) {
      throw new ApiError('not_supported', `moving a job to another lane (from ${JSON.stringify(place.lane)} to ${JSON.stringify(lane)}) is not offered by the Redis store: its lanes are in different hash slots; give only "priority" to move it within its lane (the memory store offers both)`)
    }
    const reply = await this.session.laneCall(lane, 'reprioritize', [place.member, priority], 'change')
    if (reply[0] === 0) throw new ApiError('job_not_found', `no queued or delayed job has hash ${JSON.stringify(hash)}`)
    const job = this.session.job(reply[1] as string, lane, place.laneId, place.member)
    if (reply[0] === -1) throw stillOut(job, this.session.isRunnerLane(lane), 'move')
    if (reply[0] === -2) throw new ApiError('conflict', `job with hash ${JSON.stringify(hash)} is dead: retry it, then move it`)
    this.wakeups.work(lane)
    return job
  }

  async retryDead(hash: string): Promise<Job> {
    const place = await this.session.locate(hash)
    const reply = place === undefined ? [0] : await this.session.laneCall(place.lane, 'retryDead', [place.member], 'change')
    if (reply[0] !== 1) throw new ApiError('job_not_found', `no dead job has hash ${JSON.stringify(hash)}`)
    this.wakeups.work(place!.lane)
    return this.session.job(reply[1] as string, place!.lane, place!.laneId, place!.member)
  }

  async delete(hash: string): Promise<Job> {
    const place = await this.session.locate(hash)
    const reply = place === undefined ? [0] : await this.session.laneCall(place.lane, 'delete', [place.member], 'change')
    if (reply[0] === 0) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)} that can be deleted (queued, delayed or dead)`)
    const job = this.session.job(reply[1] as string, place!.lane, place!.laneId, place!.member)
    if (reply[0] === -1) throw stillOut(job, this.session.isRunnerLane(job.lane), 'delete')
    this.session.tally.removed(1, Buffer.byteLength(job.message))
    return job
  }
}

/** A job that cannot be moved or deleted while it is leased or running: the lease or run ends first. */
function stillOut(job: Job, running: boolean, change: 'move' | 'delete'): ApiError {
  return new ApiError('conflict', `job ${job.jobNum} is ${running ? 'running' : 'leased'}; ${change} it once that ends`)
}
