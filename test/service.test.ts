import t from 'tap'
import type { ApiError } from '../src/errors'
import { createLogger } from '../src/log'
import type { Held } from '../src/queue/held'
import type { Job } from '../src/queue/job'
import type { ScheduleInput } from '../src/queue/queue'
import { JobService } from '../src/service/job-service'
import { NO_LIMITS, type QueueLimits } from '../src/service/limits'
import type { Receiver } from '../src/service/receiver'
import { type Maybe, isPromise } from '../src/store/job-store'
import { MemoryStore } from '../src/store/memory-store'
import { codeOf } from './helpers/errors'

/**
 * The job service over the in-memory store (no persistence): parked receivers and their wake-ups,
 * limits, runner slots. Every call answers synchronously here.
 */

class Clock {
  ms = 1_700_000_000_000
  readonly now = (): number => this.ms
}

function makeService(limits: Partial<QueueLimits> = {}, clock = new Clock()): JobService {
  const store = new MemoryStore({ logger: createLogger('silent'), clock: clock.now, makeHash: (n) => n.toString(16).padStart(40, '0') })
  return new JobService({ store, logger: createLogger('silent'), limits: { ...NO_LIMITS, ...limits }, clock: clock.now })
}

/** The value of a call the in-memory store answers at once. */
function now<T>(value: Maybe<T>): T {
  if (isPromise(value)) throw new Error('the in-memory store answered with a promise')
  return value
}

function schedule(service: JobService, message: string, lane = 'main', priority = 1): Job {
  return now(service.schedule([{ message, lane, priority }], false))[0]!
}

/** A receiver that records what it got, or refuses delivery like a vanished client. */
class TestReceiver implements Receiver {
  readonly got: Job[] = []
  readonly leases: (Held | undefined)[] = []
  dismissed = false
  failed: ApiError | undefined
  constructor(
    private readonly alive = true,
    readonly leaseMs?: number,
  ) {}
  deliver(job: Job, lease?: Held): boolean {
    if (!this.alive) return false
    this.got.push(job)
    this.leases.push(lease)
    return true
  }
  fail(err: ApiError): void {
    this.failed = err
  }
  dismiss(): void {
    this.dismissed = true
  }
}

function messages(receiver: TestReceiver): string[] {
  return receiver.got.map((j) => j.message)
}

function drain(service: JobService, lane = 'main'): string[] {
  const out: string[] = []
  for (let t = now(service.receive(lane, undefined)); t !== undefined; t = now(service.receive(lane, undefined))) out.push(t.job.message)
  return out
}

t.test('a parked receiver gets the next job of its lane at once, oldest receiver first', (t) => {
  const service = makeService()
  const first = new TestReceiver()
  const second = new TestReceiver()
  const elsewhere = new TestReceiver()
  service.awaitJob('main', first)
  service.awaitJob('main', second)
  service.awaitJob('video', elsewhere)
  t.same(service.laneStats().idle, { main: 2, video: 1 })
  schedule(service, 'one')
  t.same(messages(first), ['one'])
  t.same(second.got, [])
  schedule(service, 'two')
  t.same(messages(second), ['two'])
  t.same(elsewhere.got, [])
  t.same(service.laneStats(), { leased: { main: 0 }, delayed: { main: 0 }, queued: { main: 0 }, dead: { main: 0 }, oldestReady: {}, idle: { main: 0, video: 1 } }, 'a lane only waited on is not created, but its receiver counted')
  schedule(service, 'v', 'video')
  t.same(messages(elsewhere), ['v'], 'the lane, once created by a job, hands it to the receiver waiting for it')
  t.end()
})

t.test('a receiver that finds jobs ready is served without parking', (t) => {
  const service = makeService()
  schedule(service, 'later', 'main', 2)
  schedule(service, 'sooner', 'main', 1)
  const r = new TestReceiver()
  service.awaitJob('main', r)
  t.same(messages(r), ['sooner'])
  t.same(service.laneStats().idle, { main: 0 })
  t.end()
})

t.test('a cancelled receiver is gone at once and never gets a job', (t) => {
  const service = makeService()
  const gone = new TestReceiver()
  const waiting = new TestReceiver()
  service.awaitJob('main', gone)
  service.awaitJob('main', waiting)
  t.equal(service.cancel('main', gone), true)
  t.equal(service.cancel('main', gone), false)
  t.same(service.laneStats().idle, { main: 1 })
  schedule(service, 'x')
  t.same(gone.got, [])
  t.same(messages(waiting), ['x'])
  t.end()
})

t.test('a job whose reply could not be sent goes back to its place, ahead of later ones', (t) => {
  const service = makeService()
  schedule(service, 'a')
  schedule(service, 'b')
  const taken = now(service.receive('main', undefined))!
  service.undelivered(taken)
  const live = new TestReceiver()
  service.awaitJob('main', live)
  t.same(messages(live), ['a'], 'the put-back job keeps its place ahead of b')
  t.same(drain(service), ['b'], 'nothing was lost')
  t.end()
})

t.test('a refused delivery passes the job on to the next parked receiver', (t) => {
  const service = makeService()
  const dead = new TestReceiver(false)
  const live = new TestReceiver()
  service.awaitJob('main', dead)
  service.awaitJob('main', live)
  schedule(service, 'x')
  t.same(messages(live), ['x'])
  t.same(service.laneStats(), { leased: { main: 0 }, delayed: { main: 0 }, queued: { main: 0 }, dead: { main: 0 }, oldestReady: {}, idle: { main: 0 } })
  t.end()
})

t.test('a parked receiver that leases gets the lease; one that is gone gives the job back first', (t) => {
  const clock = new Clock()
  const service = makeService({}, clock)
  const gone = new TestReceiver(false, 10_000)
  const leasing = new TestReceiver(true, 10_000)
  service.awaitJob('main', gone)
  service.awaitJob('main', leasing)
  schedule(service, 'a')
  t.same(messages(leasing), ['a'])
  t.equal(leasing.leases[0]?.at, clock.ms + 10_000)
  t.type(leasing.leases[0]?.token, 'string')
  t.equal(service.totals().leased_jobs_total, 1)
  t.end()
})

t.test('dismissAll empties every lane and tells each receiver', (t) => {
  const service = makeService()
  const a = new TestReceiver()
  const b = new TestReceiver()
  service.awaitJob('main', a)
  service.awaitJob('video', b)
  service.dismissAll()
  t.equal(a.dismissed && b.dismissed, true)
  t.same(service.laneStats().idle, { main: 0 })
  t.equal(service.parkedReceivers, 0)
  t.end()
})

t.test('limits: past one, nothing is queued or parked and the error names the limit', (t) => {
  const job = (message = 'x', lane = 'main'): ScheduleInput => ({ message, lane, priority: 1 })
  const refuses = (fn: () => unknown, code: string, message: RegExp): void => {
    let thrown: unknown
    try {
      fn()
    } catch (err) {
      thrown = err
    }
    t.match(thrown, { codeName: code, message }, `refused: ${String(thrown)}`)
  }
  const total = (s: JobService): number => s.totals().queued_jobs_total

  let s = makeService({ maxQueuedJobs: 3 })
  now(s.schedule([job(), job()], true))
  refuses(() => s.schedule([job(), job()], true), 'limit_reached', /max_queued_jobs is 3/)
  t.equal(total(s), 2, 'a batch that does not fit is refused whole')
  now(s.schedule([job()], false))
  refuses(() => s.schedule([job()], false), 'limit_reached', /holds 3 jobs/)
  now(s.receive('main', 1000))
  refuses(() => s.schedule([job()], false), 'limit_reached', /holds 3 jobs/) // a leased job still counts
  s = makeService({ maxQueuedJobs: 3 })
  now(s.schedule([job(), job(), job()], true))
  now(s.receive('main', undefined))
  t.equal(now(s.schedule([job()], false))[0]!.message, 'x', 'room again once a job is taken')

  s = makeService({ maxQueuedBytes: 10 })
  now(s.schedule([job('12345')], false))
  refuses(() => s.schedule([job('123456')], false), 'limit_reached', /max_queued_bytes is 10/)
  now(s.schedule([job('\u00e9\u00e9')], false)) // 2 characters, 4 bytes in UTF-8
  t.equal(s.totals().queued_bytes, 9)
  now(s.receive('main', undefined))
  t.equal(s.totals().queued_bytes, 4)

  s = makeService({ maxMessageBytes: 4 })
  refuses(() => s.schedule([job('12345')], false), 'invalid_data', /^"message" is 5 bytes, over max_message_bytes \(4\)$/)
  refuses(() => s.schedule([job('1'), job('12345')], true), 'invalid_data', /^jobs\[1\]: "message" is 5 bytes/)
  t.equal(total(s), 0)

  s = makeService({ maxLanes: 2 })
  now(s.schedule([job('a', 'second')], false))
  refuses(() => s.schedule([job('b', 'third')], false), 'limit_reached', /max_lanes is 2/)
  t.equal(now(s.receive('third', undefined)), undefined, 'a receive creates no lane, so meets no limit')
  refuses(() => s.schedule([job('c', 'main'), job('d', 'fourth')], true), 'limit_reached', /max_lanes/)
  t.same(Object.keys(s.laneStats().queued), ['main', 'second'])

  s = makeService({ maxParkedReceivers: 2 })
  const a = new TestReceiver()
  const b = new TestReceiver()
  s.awaitJob('main', a)
  s.awaitJob('main', b)
  refuses(() => s.awaitJob('main', new TestReceiver()), 'limit_reached', /max_parked_receivers is 2/)
  now(s.schedule([job('for a')], false))
  t.equal(s.parkedReceivers, 1, 'a delivery frees a place')
  s.cancel('main', b)
  t.equal(s.parkedReceivers, 0, 'so does a cancel')
  now(s.schedule([job('ready')], false))
  s.awaitJob('main', new TestReceiver())
  s.awaitJob('main', new TestReceiver())
  s.awaitJob('main', new TestReceiver())
  refuses(() => s.awaitJob('main', new TestReceiver()), 'limit_reached', /max_parked/)
  s.dismissAll()
  t.equal(s.parkedReceivers, 0)
  t.end()
})

t.test('runner slots are not receivers: max_parked_receivers and parked_receivers leave them out', (t) => {
  const service = makeService({ maxParkedReceivers: 1 })
  class Slot extends TestReceiver {
    readonly countsAsParked = false
  }
  const slot = new Slot()
  const other = new Slot()
  service.awaitJob('work', slot)
  const client = new TestReceiver()
  service.awaitJob('main', client)
  t.equal(service.parkedReceivers, 1, 'a client parks beside an idle slot')
  service.awaitJob('work', other)
  t.equal(service.parkedReceivers, 1, 'a slot parks past the limit')
  schedule(service, 'w', 'work')
  service.cancel('work', other)
  t.equal(service.parkedReceivers, 1, 'nor does delivering to a slot or cancelling one change the count')
  schedule(service, 'm')
  t.equal(service.parkedReceivers, 0)
  service.awaitJob('work', slot)
  service.dismissAll()
  t.equal(service.parkedReceivers, 0, 'nor does dismissing them')
  t.same([messages(slot), messages(client)], [['w'], ['m']])
  t.end()
})

t.test('runner lanes: clients cannot receive from them; messages are checked at schedule time', (t) => {
  const service = makeService()
  service.setLanePolicy({
    runnerOf: (lane) => (lane === 'work' ? 'exec' : undefined),
    checkMessage: (lane, message) => {
      if (lane === 'work' && message !== 'ok') throw Object.assign(new Error('bad'), { codeName: 'invalid_data' })
    },
  })
  t.equal(codeOf(() => service.receive('work', undefined)), 'conflict')
  t.equal(codeOf(() => service.awaitJob('work', new TestReceiver())), 'conflict')
  t.throws(() => service.schedule([{ lane: 'work', priority: 1, message: 'no' }], false), /bad/)
  t.equal(now(service.schedule([{ lane: 'work', priority: 1, message: 'ok' }], false)).length, 1)
  t.end()
})

t.test('every change is told to the event stream', (t) => {
  const clock = new Clock()
  const service = makeService({}, clock)
  const seen: string[] = []
  service.events.subscribe({
    scheduled: (job) => seen.push(`scheduled ${job.jobNum}`),
    taken: (job, lease) => seen.push(`taken ${job.jobNum}${lease === undefined ? '' : ' leased'}`),
    acked: (job) => seen.push(`acked ${job.jobNum}`),
    released: (job, ms) => seen.push(`released ${job.jobNum} ${ms}`),
    expired: (job) => seen.push(`expired ${job.jobNum}`),
  })
  schedule(service, 'a')
  schedule(service, 'b')
  const a = now(service.receive('main', 1000))!
  now(service.ack(a.job.hash, a.lease!.token))
  const b = now(service.receive('main', 1000))!
  now(service.release(b.job.hash, b.lease!.token, 0))
  now(service.receive('main', 1000))
  clock.ms += 1000
  ;(service as unknown as { reap(): void }).reap()
  t.same(seen, ['scheduled 1', 'scheduled 2', 'taken 1 leased', 'acked 1', 'taken 2 leased', 'released 2 0', 'taken 2 leased', 'expired 2'])
  t.same(Object.keys(service.status().tasks as object), ['lease and delay reaper'])
  t.end()
})
