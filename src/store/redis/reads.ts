/**
 * What is read of jobs over Redis: a job by hash or by number, the pages of GET /jobs (ready jobs
 * in serving order by rank in one script; other states read whole up to LIST_CAP and paged here),
 * a lane's dead jobs, and every lane's ready jobs in serving order (GET /jobs of every lane).
 */
import { ApiError } from '../../errors'
import { type Job, MAX_PRIORITY, type RunReport } from '../../queue/job'
import { type JobPage, type PageQuery, SCAN_BUDGET, listPage } from '../../queue/pages'
import type { FoundJob, JobState, LaneSnapshot } from '../../queue/queue'
import type { RedisSession, Reply } from './session'

/** Ready jobs read per script by GET /jobs. */
const PAGE = 1000
/**
 * Jobs a search of ready jobs looks at per page, at most: a script holds Redis (every frontend's
 * lanes on that server) while it runs, so this is a tenth of what the in-memory store looks at.
 */
export const REDIS_SCAN_BUDGET = SCAN_BUDGET / 10
/** Jobs of one other state (leased, delayed, dead, succeeded) a page reads at most, to sort them. */
export const LIST_CAP = SCAN_BUDGET

export class Reads {
  constructor(private readonly session: RedisSession) {}

  async find(hash: string): Promise<FoundJob | undefined> {
    const place = await this.session.locate(hash)
    if (place === undefined) return undefined
    return this.found(place.lane, place.laneId, await this.session.laneCall(place.lane, 'find', [place.member], 'read'))
  }

  /**
   * A job by number: each lane keeps an index of its jobs' numbers (same slot), asked lane by lane
   * at once, so O(lanes) scripts. Jobs imported by `dispenserd migrate` are found too.
   */
  async findByNumber(jobNum: number): Promise<FoundJob | undefined> {
    this.session.hashes()
    await this.session.call(() => this.session.lanes.refresh(this.session.client), 'read')
    const replies = await Promise.all(this.session.lanes.lanes().map(async (lane) => ({ lane, reply: await this.session.laneCall(lane, 'findNum', [jobNum], 'read') })))
    const hit = replies.find(({ reply }) => reply[0] !== 0)
    return hit === undefined ? undefined : this.found(hit.lane, this.session.lanes.cachedId(hit.lane)!, hit.reply)
  }

  /** A find script's reply as a FoundJob: {state, record, deadline, report, member, position, result}. */
  private found(lane: string, laneId: string, reply: Reply): FoundJob | undefined {
    if (reply[0] === 0) return undefined
    const [state, record, deadline, report, member, position, result] = reply as [string, string, string, string | null, string, number, string | null | undefined]
    const job = this.session.job(record, lane, laneId, member)
    if (report !== null) job.report = JSON.parse(report) as RunReport
    if (typeof result === 'string') job.result = result
    if (state === 'delayed') job.notBefore = Number(deadline)
    const running = state === 'leased' && this.session.isRunnerLane(lane)
    const out: FoundJob = { job, state: running ? 'running' : (state as JobState) }
    if (position >= 0) out.position = position
    return out
  }

  /**
   * A page of one lane's jobs. Ready jobs in serving order are read by rank in one script (a
   * search looks at REDIS_SCAN_BUDGET jobs at most per page); the other states are read whole (up
   * to LIST_CAP) and paged here as in memory. Ready jobs by age: ApiError not_supported (Redis
   * keeps a lane's ready jobs by priority only; reading them all to sort would hold the server).
   */
  async page(query: PageQuery): Promise<JobPage> {
    this.session.hashes()
    const laneId = await this.session.call(() => this.session.lanes.idOf(this.session.client, query.lane), 'read')
    if (laneId === undefined) return { jobs: [], total: 0, nextCursor: null }
    if (query.state === 'ready') return this.readyPage(query, laneId)
    const runner = this.session.isRunnerLane(query.lane)
    const set = { leased: runner ? undefined : 'l', running: runner ? 'l' : undefined, delayed: 'd', dead: 'dead', succeeded: 'done' }[query.state]
    if (set === undefined) return listPage([], query)
    const reply = await this.session.laneCall(query.lane, 'listState', [set, LIST_CAP], 'read')
    return listPage(this.session.jobsWithReports(reply, 0, query.lane, laneId), query)
  }

  private async readyPage(query: PageQuery, laneId: string): Promise<JobPage> {
    if (query.sort !== 'order') {
      throw new ApiError('not_supported', `GET /jobs of ready jobs sorted by "${query.sort}" is not offered by the Redis store, which keeps ready jobs by priority only: use sort=order (the memory store offers every sort)`)
    }
    let after: { priority: string; member: string } | undefined
    if (query.cursor !== undefined) {
      const m = /^(\d{1,10})\.(\d{1,15})$/.exec(query.cursor)
      if (m === null || Number(m[1]) > MAX_PRIORITY) throw new ApiError('invalid_data', `"cursor" ${JSON.stringify(query.cursor)} is not a cursor of this lane's pages: pass a page's next_cursor as it is`)
      after = { priority: m[1]!, member: Number(m[2]).toString(16).padStart(12, '0') }
    }
    const args = [after?.member ?? '', after?.priority ?? 0, query.offset, query.limit, query.q ?? '', REDIS_SCAN_BUDGET]
    const reply = await this.session.laneCall(query.lane, 'readyOrder', args, 'read')
    const [total, more, lastMember, lastPriority, skipLeft] = reply as [number, number, string, string, number]
    if (more === 1 && skipLeft > 0) {
      throw new ApiError('invalid_data', `"offset" ${query.offset} is past the ${REDIS_SCAN_BUDGET} jobs a page looks at while searching over Redis: walk there with next_cursor`)
    }
    const jobs = this.session.jobs(reply, 5, query.lane, laneId)
    // The cursor: the last job looked at, as priority and lane sequence (opaque to clients).
    return { jobs, total, nextCursor: more === 1 ? `${lastPriority}.${parseInt(lastMember, 16)}` : null }
  }

  async deadJobs(lane: string, offset: number, limit: number): Promise<{ total: number; jobs: Job[] }> {
    const laneId = await this.session.call(() => this.session.lanes.idOf(this.session.client, lane), 'read')
    if (laneId === undefined) return { total: 0, jobs: [] }
    const reply = await this.session.laneCall(lane, 'deadPage', [offset, limit], 'read')
    return { total: reply[0] as number, jobs: this.session.jobsWithReports(reply, 1, lane, laneId) }
  }

  /**
   * Every lane's ready jobs in serving order, read in pages of 1000 (each page is one consistent
   * step; the listing of a lane that changes meanwhile is not one snapshot).
   */
  async readyJobs(): Promise<LaneSnapshot[]> {
    await this.session.call(() => this.session.lanes.refresh(this.session.client), 'read')
    const out: LaneSnapshot[] = []
    for (const lane of this.session.lanes.lanes()) {
      const laneId = this.session.lanes.cachedId(lane)!
      const jobs: Job[] = []
      let last = ''
      for (;;) {
        const reply = await this.session.laneCall(lane, 'readyPage', [last, jobs.length, PAGE], 'read')
        for (const job of this.session.jobs(reply, 1, lane, laneId)) jobs.push(job)
        if (reply.length - 1 < PAGE * 2) break
        last = reply[reply.length - 2] as string
      }
      out.push({ lane, count: jobs.length, parts: [jobs] })
    }
    return out
  }
}
