import { ApiError } from '../errors'
import type { Logger } from '../log'
import type { Queue } from '../queue/queue'
import type { Exchange } from './exchange'
import type { Operation } from './operation'
import { deadJobsReply, jobStateReply, leaseReply } from './replies'
import { type FailedQuery, type LeaseCommand, parseAck, parseFailed, parseHash, parseRelease, parseTouch } from './requests'

/** Answers a change once it is durable; `failure` says what became of it if it cannot be. */
export type Answer = (ex: Exchange, body: string, failure: string) => void

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
export function jobOperations(queue: Queue, logger: Logger, answer: Answer): JobOperations {
  return {
    ack: {
      parse: parseAck,
      pacer: undefined,
      changes: true,
      run(ex, { hash, token }) {
        const job = queue.ack(hash, token)
        logger.debug({ lane: job.lane, job_num: job.jobNum }, 'acked')
        answer(ex, leaseReply(job), `job ${job.jobNum} is acked in memory only, until the next snapshot`)
      },
    },
    release: {
      parse: parseRelease,
      pacer: undefined,
      changes: true,
      run(ex, { hash, token, ms }) {
        const job = queue.release(hash, token, ms)
        logger.debug({ lane: job.lane, job_num: job.jobNum, delay_ms: ms ?? 0 }, 'released')
        answer(ex, leaseReply(job), `job ${job.jobNum} is released in memory only, until the next snapshot`)
      },
    },
    touch: {
      parse: parseTouch,
      pacer: undefined,
      changes: false,
      run(ex, { hash, token, ms }) {
        const lease = queue.touch(hash, token, ms)
        ex.send(200, leaseReply(lease.job, lease))
      },
    },
    retry: {
      parse: parseHash,
      pacer: undefined,
      changes: true,
      run(ex, hash) {
        const job = queue.retryDead(hash)
        logger.info({ lane: job.lane, job_num: job.jobNum }, 'dead job queued again')
        answer(ex, leaseReply(job), `job ${job.jobNum} is queued again in memory only, until the next snapshot`)
      },
    },
    delete: {
      parse: parseHash,
      pacer: undefined,
      changes: true,
      run(ex, hash) {
        const job = queue.deleteJob(hash)
        logger.info({ lane: job.lane, job_num: job.jobNum, reason: 'deleted by request' }, 'job deleted')
        answer(ex, leaseReply(job), `job ${job.jobNum} is deleted in memory only, until the next snapshot`)
      },
    },
    job: {
      parse: parseHash,
      pacer: undefined,
      changes: false,
      run(ex, hash) {
        const found = queue.findJob(hash)
        if (found === undefined) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)} (runner lanes' jobs, and delayed, leased and dead jobs of any lane, can be found by hash)`)
        ex.send(200, jobStateReply(found.job, found.state))
      },
    },
    failed: {
      parse: parseFailed,
      pacer: undefined,
      changes: false,
      run(ex, { lane, offset, limit }) {
        const { total, jobs } = queue.deadJobs(lane, offset, limit)
        ex.send(200, deadJobsReply(lane, total, offset, jobs))
      },
    },
  }
}
