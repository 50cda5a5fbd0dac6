import pino from 'pino'
import t from 'tap'
import { Job } from '../src/queue/job'
import { type CronScheduler as Scheduler, CronScheduler, slotHash } from '../src/service/cron'
import { parseCronEntry } from '../src/service/cron-entry'
import { JobService } from '../src/service/job-service'
import { NO_LIMITS } from '../src/service/limits'
import { type Maybe, isPromise } from '../src/store/job-store'
import { MemoryStore } from '../src/store/memory-store'

/**
 * The cron scheduler over the in-memory store with a hand-driven wall clock: a slot fires once
 * whatever the clock does (steps back, jumps ahead), missed slots follow the entry's policy, and two
 * schedulers over one store (two frontends) fire a slot once.
 */

const logger = pino({ level: 'silent' })

/** The in-memory store answers at once: its values are plain, never promises. */
function sync<T>(value: Maybe<T>): T {
  if (isPromise(value)) throw new Error('expected the in-memory store to answer at once')
  return value
}
const T0 = Date.parse('2026-11-30T12:00:00.000Z')

function setup(): { clock: { ms: number }; store: MemoryStore; service: JobService; cron: (entries: unknown[]) => Scheduler; jobs: () => Job[] } {
  const clock = { ms: T0 + 300 }
  const now = (): number => clock.ms
  const store = new MemoryStore({ logger, clock: now })
  const service = new JobService({ store, logger, limits: NO_LIMITS, clock: now })
  const schedulers: Scheduler[] = []
  t.teardown(() => {
    for (const s of schedulers) s.stop()
    service.stop()
  })
  return {
    clock,
    store,
    service,
    cron(entries) {
      const scheduler = new CronScheduler(service, store, logger, now)
      schedulers.push(scheduler)
      sync(scheduler.start(entries.map((raw, i) => parseCronEntry(raw, `cron[${i}]`))))
      return scheduler
    },
    jobs: () => sync(service.readyJobs()).flatMap((lane) => lane.parts.flat()),
  }
}

const slotsOf = (jobs: Job[]): string[] => jobs.map((job) => String(job.unique?.key.split(':').slice(2).join(':')))

t.test('each slot fires once, with a hash derived from the entry and the slot', (t) => {
  const { clock, cron, jobs } = setup()
  const c = cron([{ name: 'tick', every: 1, message: 'm' }])
  c.fireDue()
  t.same(jobs(), [], 'the slot before the entry existed does not fire')
  clock.ms = T0 + 1000
  c.fireDue()
  c.fireDue()
  clock.ms = T0 + 1999
  c.fireDue()
  t.same(slotsOf(jobs()), ['2026-11-30T12:00:01.000Z'])
  t.equal(jobs()[0]!.hash, slotHash('tick', T0 + 1000))
  t.end()
})

t.test('a wall clock stepped back fires no slot again; stepped ahead, missed slots follow the policy', (t) => {
  const { clock, cron, jobs } = setup()
  const c = cron([{ name: 'skip', every: 600, message: 's' }, { name: 'once', every: 600, message: 'o', lane: 'o', missed: 'once' }])
  clock.ms = T0 + 600_000
  c.fireDue()
  t.equal(jobs().length, 2)
  clock.ms = T0 - 3_600_000
  c.fireDue()
  clock.ms = T0 + 600_500
  c.fireDue()
  t.equal(jobs().length, 2, 'an hour back and forth again: nothing fires twice')
  clock.ms = T0 + 7_200_000 + 90_000 // two hours ahead, the latest slot 90 s ago: missed
  c.fireDue()
  t.same(jobs().map((job) => [job.lane, job.message]), [['main', 's'], ['o', 'o'], ['o', 'o']], '"once" fires the latest missed slot; "skip" does not')
  t.equal(jobs()[2]!.hash, slotHash('once', T0 + 7_200_000))
  clock.ms = T0 + 7_800_000
  c.fireDue()
  t.equal(jobs().length, 5, 'then both fire on time again')
  t.end()
})

t.test('a slot late by up to a minute is on time; paused entries skip the slots of their pause', (t) => {
  const { clock, cron, jobs } = setup()
  const c = cron([{ name: 'p', schedule: '0 * * * * *', message: 'p', missed: 'skip' }])
  clock.ms = T0 + 60_000 + 59_000
  c.fireDue()
  t.equal(jobs().length, 1, '59 s late: fired')
  sync(c.setPaused('p', true))
  clock.ms = T0 + 180_000
  c.fireDue()
  t.equal(jobs().length, 1, 'paused')
  clock.ms = T0 + 200_000
  sync(c.setPaused('p', false))
  c.fireDue()
  t.equal(jobs().length, 1, 'the slot passed during the pause is not fired on resume')
  clock.ms = T0 + 240_000
  c.fireDue()
  t.equal(jobs().length, 2)
  t.end()
})

t.test('two schedulers over one store (two frontends) fire each slot once', (t) => {
  const { clock, cron, jobs } = setup()
  const a = cron([{ name: 'tick', every: 1, message: 'm' }])
  const b = cron([{ name: 'tick', every: 1, message: 'm' }])
  for (let s = 1; s <= 3; s++) {
    clock.ms = T0 + s * 1000 + 5
    a.fireDue()
    b.fireDue()
  }
  t.equal(jobs().length, 3)
  t.same(new Set(jobs().map((job) => job.hash)).size, 3)
  t.end()
})

t.test('a slot that cannot be queued is skipped and its error shown', (t) => {
  const { clock, cron, jobs, service } = setup()
  service.setLimits({ ...NO_LIMITS, maxQueuedJobs: 1 })
  const c = cron([{ name: 'tick', every: 1, message: 'm' }])
  for (let s = 1; s <= 2; s++) {
    clock.ms = T0 + s * 1000
    c.fireDue()
  }
  t.equal(jobs().length, 1)
  const [view] = c.list()
  t.match(view!.last_error, /max_queued_jobs is 1/)
  t.equal(view!.last_fired_at, '2026-11-30T12:00:01.000Z')
  t.equal(view!.next_fire_at, '2026-11-30T12:00:03.000Z')
  t.end()
})
