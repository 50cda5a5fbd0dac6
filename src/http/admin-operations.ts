import { ApiError } from '../errors'
import type { JobPage } from '../queue/pages'
import type { JobService } from '../service/job-service'
import type { BulkRequest } from '../service/bulk'
import { then } from '../store/job-store'
import { parseBulk, parseLaneName, parseMove, parsePage } from './admin-requests'
import { answer, fail } from './answer'
import type { Operation } from './operation'
import { jobPageReply, leaseReply } from './replies'
import type { PageQuery } from '../queue/pages'

export interface AdminOperations {
  page: Operation<PageQuery>
  move: Operation<{ hash: string; lane: string | undefined; priority: number | undefined }>
  pause: Operation<string>
  resume: Operation<string>
  kill: Operation<string>
  bulk: Operation<BulkRequest>
}

/** The operators' endpoints: pages of jobs, moves, pause and resume, kill, bulk actions. */
export function adminOperations(service: JobService, parseHash: (fields: Record<string, unknown>) => string): AdminOperations {
  const { admin } = service
  const pause = (paused: boolean): Operation<string> => ({
    parse: parseLaneName,
    pacer: undefined,
    changes: true,
    run: (ex, lane) => answer(ex, admin.setPaused(lane, paused), (r) => JSON.stringify({ status: 'ok', code: 0, lane: r.lane, paused: r.paused })),
  })
  return {
    page: {
      parse: parsePage,
      pacer: undefined,
      changes: false,
      run: (ex, query) => answer(ex, admin.page(query), (page: JobPage & { positions: (number | null)[]; etas: (number | null)[] }) => jobPageReply(query, page)),
    },
    move: {
      parse: parseMove,
      pacer: undefined,
      changes: true,
      run(ex, { hash, lane, priority }) {
        const moved = then(admin.find(hash), (found) => {
          if (found === undefined) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)}`)
          return admin.relocate(hash, lane ?? found.job.lane, priority ?? found.job.priority)
        })
        answer(ex, moved, (job) => JSON.stringify({ status: 'ok', code: 0, job_num: job.jobNum, hash: job.hash, lane: job.lane, priority: job.priority }))
      },
    },
    pause: pause(true),
    resume: pause(false),
    kill: {
      parse: parseHash,
      pacer: undefined,
      changes: true,
      run: (ex, hash) => answer(ex, admin.kill(hash), (job) => leaseReply(job)),
    },
    bulk: {
      parse: parseBulk,
      pacer: undefined,
      changes: true,
      run(ex, request) {
        admin.bulk(request).then(
          (r) => ex.send(200, JSON.stringify({ status: 'ok', code: 0, action: request.action, matched: r.matched, done: r.done, failed: r.failed, errors: r.errors })),
          (err: unknown) => fail(ex, err),
        )
      },
    },
  }
}
