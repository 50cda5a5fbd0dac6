import { ApiError } from '../errors'
import type { JobService } from '../service/job-service'
import { then } from '../store/job-store'
import { answer } from './answer'
import type { Operation } from './operation'
import { deadJobsReply, jobStateReply, leaseReply } from './replies'
import { type FailedQuery, type LeaseCommand, parseAck, parseFailed, parseHash, parseRelease, parseTouch } from './requests'

export interface JobOperations {
  ack: Operation<LeaseCommand>
  release: Operation<LeaseCommand>
  touch: Operation<LeaseCommand>
  retry: Operation<string>
  delete: Operation<string>
  job: Operation<string>
  failed: Operation<FailedQuery>
}

/** The endpoints that act on one job by its hash (leases, retry, delete) or show jobs (job, failed). */
export function jobOperations(service: JobService): JobOperations {
  return {
    ack: {
      parse: parseAck,
      pacer: undefined,
      changes: true,
      run: (ex, { hash, token, result }) => answer(ex, service.ack(hash, token, result), (job) => leaseReply(job)),
    },
    release: {
      parse: parseRelease,
      pacer: undefined,
      changes: true,
      run: (ex, { hash, token, ms }) => answer(ex, service.release(hash, token, ms ?? 0), (job) => leaseReply(job)),
    },
    touch: {
      parse: parseTouch,
      pacer: undefined,
      changes: false,
      run: (ex, { hash, token, ms }) => answer(ex, service.touch(hash, token, ms), (lease) => leaseReply(lease.job, lease)),
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
      parse: parseHash,
      pacer: undefined,
      changes: false,
      run(ex, hash) {
        const found = then(service.find(hash), (found) => {
          if (found === undefined) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)} (runner lanes' jobs, and delayed, leased and dead jobs of any lane, can be found by hash)`)
          return found
        })
        answer(ex, found, ({ job, state }) => jobStateReply(job, state))
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
