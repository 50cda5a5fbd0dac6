import { CronScheduler } from '../src/service/cron'
import pino from 'pino'
import t from 'tap'
import type { ApiError } from '../src/errors'
import type { Exchange } from '../src/http/exchange'
import { Routes } from '../src/http/routes'
import { JobService } from '../src/service/job-service'
import { NO_LIMITS } from '../src/service/limits'
import { MemoryStore } from '../src/store/memory-store'

/** Stands in for a uWS request/response pair: records what it was answered. */
class FakeExchange {
  open = true
  readonly answers: { status: number; body: string }[] = []
  onAbort(): void {}
  send(status: number, body: string | Uint8Array): boolean {
    if (!this.open) return false
    this.open = false
    this.answers.push({ status, body: Buffer.from(body).toString() })
    return true
  }
  sendError(err: ApiError): boolean {
    return this.send(err.httpStatus, JSON.stringify({ code: err.code }))
  }
}

const fake = (): FakeExchange & Exchange => new FakeExchange() as unknown as FakeExchange & Exchange

t.test('a job whose hand-over fails during shutdown stays queued for the final snapshot', (t) => {
  const logger = pino({ level: 'silent' })
  const store = new MemoryStore({ logger })
  const service = new JobService({ store, logger, limits: NO_LIMITS })
  const cron = new CronScheduler(service, store, logger)
  t.teardown(() => cron.stop())
  const routes = new Routes({ service, logger, version: 'test', throttleReceive: false, throttleSchedule: false, journaled: false, statusExtras: () => ({}), cron })
  const first = fake()
  const second = fake()
  routes.receiveBlock(first, Buffer.alloc(0))
  routes.receiveBlock(second, Buffer.alloc(0))
  const scheduler = fake()
  routes.schedule(scheduler, Buffer.from('{"message":"precious"}'))
  t.equal(scheduler.answers[0]?.status, 200, 'the schedule was acknowledged')
  // The job waits in the outbox for `first`, whose client then goes away; then SIGTERM.
  first.open = false
  routes.beginShutdown()
  t.equal(service.totals().queued_jobs_total, 1, 'the job is back in its lane before the snapshot is taken')
  t.same(second.answers.map((a) => a.status), [503], 'the other parked receiver was dismissed, not handed the job')
  t.end()
})
