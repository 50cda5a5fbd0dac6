import type { Logger } from '../log'
import type { JobEventListener } from './events'

/**
 * Log lines about jobs, from the event stream: each with the lane, job number and hash. Debug for
 * the everyday (scheduled, taken, acked), warnings for what an operator should notice.
 */
export function jobLog(logger: Logger): JobEventListener {
  return {
    // The everyday lines are made only when debug is on: their fields (a hash derived per job, an
    // object) were made for every job even when pino dropped them.
    scheduled: (job) => {
      if (logger.isLevelEnabled('debug')) logger.debug({ lane: job.lane, job_num: job.jobNum, hash: job.hash, priority: job.priority }, 'scheduled')
    },
    acked: (job) => {
      if (logger.isLevelEnabled('debug')) logger.debug({ lane: job.lane, job_num: job.jobNum, hash: job.hash }, 'acked')
    },
    released: (job, delayMs) => {
      if (logger.isLevelEnabled('debug')) logger.debug({ lane: job.lane, job_num: job.jobNum, hash: job.hash, delay_ms: delayMs }, 'released')
    },
    expired: (job) => logger.warn({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason: 'lease expired' }, 'job put back'),
    retried: (job) => logger.info({ lane: job.lane, job_num: job.jobNum, hash: job.hash }, 'dead job queued again'),
    deleted: (job) => logger.info({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason: 'deleted by request' }, 'job deleted'),
  }
}
