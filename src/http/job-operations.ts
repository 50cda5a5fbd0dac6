import { ApiError } from '../errors'
import type { JobService } from '../service/job-service'
import { then } from '../store/job-store'
import { answer } from './answer'
import type { Operation } from './operation'
import { batchReply, deadJobsReply, jobStateReply, leaseReply } from './replies'
import { parseJobRef } from './admin-requests'
import { type FailedQuery, type LeaseCommands, parseAck, parseFailed, parseHash, parseRelease, parseTouch } from './requests'

export interface JobOperations {
  ack: Operation<LeaseCommands>
  release: Operation<LeaseCommands>
  touch: Operation<LeaseCommands>
  retry: Operation<string>
  delete: Operation<string>
  job: Operation<{ hash: string } | { jobNum: number }>
  failed: Operation<FailedQuery>
}

/** The endpoints that act on one job by its hash (leases, retry, delete) or show jobs (job, failed). */
export function jobOperations(service: JobService): JobOperations {
  return {
    ack: {
      parse: parseAck,
      pacer: undefined,
      changes: true,
      run(ex, request) {
        if (!request.batch) answer(ex, service.ack(request.command.hash, request.command.token, request.command.result), (job) => leaseReply(job))
        else answer(ex, service.ackMany(request.commands), (answers) => batchReply(answers, (job) => leaseReply(job)))
      },
    },
    release: {
      parse: parseRelease,
      pacer: undefined,
      changes: true,
      run(ex, request) {
        if (!request.batch) answer(ex, service.release(request.command.hash, request.command.token, request.command.ms ?? 0), (job) => leaseReply(job))
        else answer(ex, service.releaseMany(request.commands), (answers) => batchReply(answers, (job) => leaseReply(job)))
      },
    },
    touch: {
      parse: parseTouch,
      pacer: undefined,
      changes: false,
      run(ex, request) {
        if (!request.batch) answer(ex, service.touch(request.command.hash, request.command.token, request.command.ms), (lease) => leaseReply(lease.job, lease))
        else answer(ex, service.touchMany(request.commands), (answers) => batchReply(answers, (lease) => leaseReply(lease.job, lease)))
      },
    },
    retry: {
      parse: parseHash,
      pacer: undefined,
      changes: true,
      run: (ex, hash) => answer(ex, service.retryDead(hash), (job) => leaseReply(job)),
    },
    delete: {
      parse: parseHash,
      pacer: undefined,
      changes: true,
      run: (ex, hash) => answer(ex, service.delete(hash), (job) => leaseReply(job)),
    },
    job: {
      parse: parseJobRef,
      pacer: undefined,
      changes: false,
      run(ex, ref) {
        const lookup = 'hash' in ref ? service.admin.find(ref.hash) : service.admin.findByNumber(ref.jobNum)
        const found = then(lookup, (found) => {
          if (found === undefined) throw new ApiError('job_not_found', 'hash' in ref ? `no job has hash ${JSON.stringify(ref.hash)}` : `no job has job_num ${ref.jobNum}`)
          return found
        })
        answer(ex, found, ({ job, state, position, eta }) => jobStateReply(job, state, { position, eta }))
      },
    },
    failed: {
      parse: parseFailed,
      pacer: undefined,
      changes: false,
      run: (ex, { lane, offset, limit }) => answer(ex, service.deadJobs(lane, offset, limit), ({ total, jobs }) => deadJobsReply(lane, total, offset, jobs)),
    },
  }
}
