import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { Job } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'
import { jobLog } from '../src/service/job-log'

/** The job log's everyday lines (debug) are written with their fields when debug is on, and not made at all otherwise. */

function capture(level: string): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return { lines, logger: pino({ level }, stream) }
}

t.test('scheduled, acked and released lines name the lane, job number and hash at debug level', async (t) => {
  const { lines, logger } = capture('debug')
  const log = jobLog(logger)
  const job = new Job(7, stampOf('video', 3, 0), 'm', 'f'.repeat(40))
  log.scheduled!(job)
  log.acked!(job)
  log.released!(job, 500)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(
    lines.map((l) => [l.msg, l.lane, l.job_num, l.hash]),
    ['scheduled', 'acked', 'released'].map((msg) => [msg, 'video', 7, 'f'.repeat(40)]),
  )
  t.equal(lines[0]!.priority, 3)
  t.equal(lines[2]!.delay_ms, 500)
})

t.test('above debug, the everyday lines are not written (and their fields not made: no hash is asked for)', async (t) => {
  const { lines, logger } = capture('info')
  const log = jobLog(logger)
  let hashes = 0
  const job = new Job(8, stampOf('video', 3, 0), 'm')
  Object.defineProperty(job, 'hash', { get: () => `${hashes++}` })
  log.scheduled!(job)
  log.acked!(job)
  log.released!(job, 0)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(lines, [])
  t.equal(hashes, 0)
  logger.level = 'debug'
  log.acked!(job)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(lines.length, 1, 'turned on at run time (a reload): written again')
  t.equal(hashes, 1)
})
