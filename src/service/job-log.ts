import type { Logger } from '../log'
import type { JobEventListener } from './events'

/**
 * Log lines about jobs, from the event stream: each with the lane, job number and hash. Debug for
 * the everyday (scheduled, taken, acked), warnings for what an operator should notice.
 */
export function jobLog(logger: Logger): JobEventListener {
  return {
    // Asked first: the line's hash is a string made for it, for every job scheduled, and the line is off by default.
    scheduled: (job) => {
      if (logger.isLevelEnabled('debug')) logger.debug({ lane: job.lane, job_num: job.jobNum, hash: job.hash, priority: job.priority }, 'scheduled')
    },
    acked: (job) => logger.debug({ lane: job.lane, job_num: job.jobNum, hash: job.hash }, 'acked'),
    released: (job, delayMs) => logger.debug({ lane: job.lane, job_num: job.jobNum, hash: job.hash, delay_ms: delayMs }, 'released'),
    expired: (job) => logger.warn({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason: 'lease expired' }, 'job put back'),
    retried: (job) => logger.info({ lane: job.lane, job_num: job.jobNum, hash: job.hash }, 'dead job queued again'),
    deleted: (job) => logger.info({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason: 'deleted by request' }, 'job deleted'),
  }
}
