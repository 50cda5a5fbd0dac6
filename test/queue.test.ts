import t from 'tap'
import { HashScheme } from '../src/queue/hash'
import { IndexedHeap } from '../src/queue/heap'
import { Job, compareJobs } from '../src/queue/job'
import type { Receiver } from '../src/queue/lane'
import { ApiError } from '../src/errors'
import { NO_LIMITS, Queue } from '../src/queue/queue'
import { ReadyJobs } from '../src/queue/ready'

/** A deterministic queue: fixed clock and readable hashes. */
function makeQueue(): Queue {
  return new Queue({ clock: () => 1_700_000_000_000, makeHash: (n) => n.toString(16).padStart(40, '0') })
}

/** A receiver that records what it got, or refuses delivery like a vanished client. */
class TestReceiver implements Receiver {
  readonly got: Job[] = []
  dismissed = false
  constructor(private readonly alive = true) {}
  deliver(job: Job): boolean {
    if (!this.alive) return false
    this.got.push(job)
    return true
  }
  dismiss(): void {
    this.dismissed = true
  }
}

function drainLane(queue: Queue, lane = 'main'): Job[] {
  const out: Job[] = []
  for (let job = queue.receive(lane); job !== undefined; job = queue.receive(lane)) out.push(job)
  return out
}

t.test('heap: pops in order and removes from the middle', (t) => {
  // A seeded generator keeps this reproducible.
  let seed = 42
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const heap = new IndexedHeap<Job>((a, b) => compareJobs(a, b) < 0)
  const all: Job[] = []
  for (let i = 1; i <= 2000; i++) {
    const job = new Job(i, 0, 'main', Math.floor(random() * 50), `m${i}`)
    heap.push(job)
    all.push(job)
  }
  const removed = all.filter((_, i) => i % 7 === 3)
  for (const job of removed) t.equal(heap.remove(job), true)
  t.equal(heap.remove(removed[0]!), false, 'removing twice is refused')
  t.equal(removed[0]!.heapIndex, -1)
  const expected = all.filter((_, i) => i % 7 !== 3).sort(compareJobs)
  const popped: Job[] = []
  for (let job = heap.pop(); job !== undefined; job = heap.pop()) popped.push(job)
  t.same(popped.map((j) => j.jobNum), expected.map((j) => j.jobNum))
  t.equal(heap.size, 0)
  t.end()
})

t.test('ready jobs: random schedules, receives and put-backs always serve in (priority, job number) order', (t) => {
  let seed = 7
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  for (const priorities of [3, 40, 100000]) {
    const totals = { jobs: 0, bytes: 0 }
    const ready = new ReadyJobs(totals)
    const model: Job[] = []
    const taken: Job[] = []
    let next = 1
    const mismatches: string[] = []
    for (let step = 0; step < 20000; step++) {
      const r = random()
      if (r < 0.5) {
        const job = new Job(next++, 0, 'main', Math.floor(random() * priorities), '')
        ready.push(job)
        model.push(job)
      } else if (r < 0.6 && taken.length > 0) {
        // Put back a job taken earlier (a failed hand-over): it must regain its place.
        const job = taken.splice(Math.floor(random() * taken.length), 1)[0]!
        ready.push(job)
        model.push(job)
      } else {
        model.sort(compareJobs)
        const expected = model.shift()
        const got = ready.pop()
        if (got !== expected) mismatches.push(`step ${step}: expected ${expected?.jobNum}, got ${got?.jobNum}`)
        if (got !== undefined) taken.push(got)
      }
      if (ready.size !== model.length) mismatches.push(`step ${step}: size ${ready.size} != ${model.length}`)
      if (mismatches.length > 0) break
    }
    t.same(mismatches, [], `${priorities} distinct priorities`)
    t.same(ready.inOrder(), model.sort(compareJobs), 'inOrder lists the remaining jobs in serving order')
    t.equal(totals.jobs, model.length, 'the shared totals follow')
  }
  t.end()
})

t.test('lower priority number is served first; ties are strict FIFO', (t) => {
  const q = makeQueue()
  const specs = [
    [5, 'a'], [1, 'b'], [5, 'c'], [0, 'd'], [1, 'e'], [4294967295, 'f'], [0, 'g'], [5, 'h'],
  ] as const
  for (const [priority, message] of specs) q.schedule({ lane: 'main', priority, message })
  t.same(drainLane(q).map((j) => j.message), ['d', 'g', 'b', 'e', 'a', 'c', 'h', 'f'])
  t.equal(q.receive('main'), undefined)
  t.end()
})

t.test('FIFO holds for many jobs of one priority', (t) => {
  const q = makeQueue()
  for (let i = 0; i < 1000; i++) q.schedule({ lane: 'main', priority: 512, message: String(i) })
  t.same(drainLane(q).map((j) => Number(j.message)), Array.from({ length: 1000 }, (_, i) => i))
  t.end()
})

t.test('job numbers grow and hashes are 40 hex digits by default', (t) => {
  const q = new Queue()
  const a = q.schedule({ lane: 'main', priority: 1, message: 'x' })
  const b = q.schedule({ lane: 'other', priority: 1, message: 'y' })
  t.equal(b.jobNum, a.jobNum + 1)
  t.match(a.hash, /^[0-9a-f]{40}$/)
  t.not(a.hash, b.hash)
  t.end()
})

t.test('derived hashes: 40 hex digits, distinct for every job number, distinct per process', (t) => {
  const a = new HashScheme()
  const b = new HashScheme()
  const numbers = [...Array.from({ length: 100_000 }, (_, i) => i + 1), 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]
  const hashes = numbers.map((n) => a.hashOf(n))
  t.same(hashes.filter((h) => !/^[0-9a-f]{40}$/.test(h)), [], 'all are 40 hex digits')
  t.equal(new Set(hashes).size, numbers.length, 'no two job numbers share a hash')
  t.equal(a.hashOf(77), a.hashOf(77), 'stable within a process')
  t.not(a.hashOf(77), b.hashOf(77), 'different in another process')
  t.end()
})

t.test('lanes are separate and every lane a job was scheduled to is known; receives create none', (t) => {
  const q = makeQueue()
  q.schedule({ lane: 'video', priority: 1, message: 'v' })
  q.schedule({ lane: 'main', priority: 9, message: 'm' })
  t.equal(q.receive('email'), undefined)
  t.equal(q.receiveLeased('email', 1000), undefined)
  t.same(q.stats().queued, { main: 1, video: 1 })
  t.equal(q.receive('video')!.message, 'v')
  t.equal(q.receive('video'), undefined)
  t.equal(q.receive('main')!.message, 'm')
  t.same(q.laneNames(), ['main', 'video'])
  t.end()
})

t.test('a parked receiver gets the next job of its lane at once, oldest receiver first', (t) => {
  const q = makeQueue()
  const first = new TestReceiver()
  const second = new TestReceiver()
  const elsewhere = new TestReceiver()
  q.awaitJob('main', first)
  q.awaitJob('main', second)
  q.awaitJob('video', elsewhere)
  t.same(q.stats().idle, { main: 2, video: 1 })
  q.schedule({ lane: 'main', priority: 1, message: 'one' })
  t.same(first.got.map((j) => j.message), ['one'])
  t.same(second.got, [])
  q.schedule({ lane: 'main', priority: 1, message: 'two' })
  t.same(second.got.map((j) => j.message), ['two'])
  t.same(elsewhere.got, [])
  t.same(q.stats(), { leased: { main: 0 }, delayed: { main: 0 }, queued: { main: 0 }, idle: { main: 0, video: 1 } }, 'a lane only waited on is not created, but its receiver counted')
  t.same(q.laneNames(), ['main'])
  q.schedule({ lane: 'video', priority: 1, message: 'v' })
  t.same(elsewhere.got.map((j) => j.message), ['v'], 'the lane, once created by a job, hands it to the receiver waiting for it')
  t.end()
})

t.test('a receiver that finds jobs ready is served without parking', (t) => {
  const q = makeQueue()
  q.schedule({ lane: 'main', priority: 2, message: 'later' })
  q.schedule({ lane: 'main', priority: 1, message: 'sooner' })
  const r = new TestReceiver()
  q.awaitJob('main', r)
  t.same(r.got.map((j) => j.message), ['sooner'])
  t.same(q.stats().idle, { main: 0 })
  t.end()
})

t.test('a cancelled receiver is gone at once and never gets a job', (t) => {
  const q = makeQueue()
  const gone = new TestReceiver()
  const waiting = new TestReceiver()
  q.awaitJob('main', gone)
  q.awaitJob('main', waiting)
  t.equal(q.cancel('main', gone), true)
  t.equal(q.cancel('main', gone), false)
  t.same(q.stats().idle, { main: 1 })
  q.schedule({ lane: 'main', priority: 1, message: 'x' })
  t.same(gone.got, [])
  t.same(waiting.got.map((j) => j.message), ['x'])
  t.end()
})

t.test('a job handed to a receiver that turns out to be gone goes back to its place', (t) => {
  const q = makeQueue()
  q.schedule({ lane: 'main', priority: 1, message: 'a' })
  q.schedule({ lane: 'main', priority: 1, message: 'b' })
  const jobA = q.receive('main')!
  const dead = new TestReceiver(false)
  const live = new TestReceiver()
  q.awaitJob('main', dead) // b is offered to the dead receiver and refused
  q.returnUndelivered(jobA, undefined)
  q.awaitJob('main', live)
  t.same(live.got.map((j) => j.message), ['a'], 'the put-back job keeps its place ahead of b')
  t.same(drainLane(q).map((j) => j.message), ['b'], 'nothing was lost')
  t.end()
})

t.test('a refused delivery passes the job on to the next parked receiver', (t) => {
  const q = makeQueue()
  const dead = new TestReceiver(false)
  const live = new TestReceiver()
  q.awaitJob('main', dead)
  q.awaitJob('main', live)
  q.schedule({ lane: 'main', priority: 1, message: 'x' })
  t.same(live.got.map((j) => j.message), ['x'])
  t.same(q.stats(), { leased: { main: 0 }, delayed: { main: 0 }, queued: { main: 0 }, idle: { main: 0 } })
  t.end()
})

t.test('restore keeps numbers and continues after the highest', (t) => {
  const q = makeQueue()
  q.restore({ jobNum: 7, hash: 'h7', created: 100, lane: 'main', priority: 3, message: 'seven' })
  q.restore({ jobNum: 3, lane: 'main', priority: 3, message: 'three' })
  t.equal(q.nextJobNum, 8)
  const next = q.schedule({ lane: 'main', priority: 3, message: 'eight' })
  t.equal(next.jobNum, 8)
  const served = drainLane(q)
  t.same(served.map((j) => j.jobNum), [3, 7, 8])
  t.equal(served[1]!.hash, 'h7')
  t.match(served[0]!.hash, /^[0-9a-f]{40}$/, 'a missing hash is made up')
  q.reserveJobNumsBelow(100)
  t.equal(q.schedule({ lane: 'main', priority: 1, message: 'x' }).jobNum, 100)
  t.end()
})

t.test('dismissAllParked empties every lane and tells each receiver', (t) => {
  const q = makeQueue()
  const a = new TestReceiver()
  const b = new TestReceiver()
  q.awaitJob('main', a)
  q.awaitJob('video', b)
  q.dismissAllParked()
  t.equal(a.dismissed && b.dismissed, true)
  t.same(q.stats().idle, { main: 0 })
  t.end()
})

t.test('jobsInOrder lists serving order without consuming', (t) => {
  const q = makeQueue()
  q.schedule({ lane: 'main', priority: 9, message: 'c' })
  q.schedule({ lane: 'main', priority: 1, message: 'a' })
  q.schedule({ lane: 'main', priority: 5, message: 'b' })
  t.same(q.jobsInOrder('main').map((j) => j.message), ['a', 'b', 'c'])
  t.equal(q.totalQueued, 3)
  t.same(q.jobsInOrder('nope'), [])
  t.end()
})

t.test('limits: past one, nothing is queued or parked and the error names the limit', (t) => {
  const limited = (limits: Partial<typeof NO_LIMITS>): Queue => new Queue({ limits: { ...NO_LIMITS, ...limits } })
  const job = (message = 'x', lane = 'main') => ({ message, lane, priority: 1 })
  const refuses = (fn: () => unknown, code: string, message: RegExp): void => {
    let thrown: unknown
    try {
      fn()
    } catch (err) {
      thrown = err
    }
    t.ok(thrown instanceof ApiError, `throws an ApiError: ${String(thrown)}`)
    t.match(thrown, { codeName: code, message })
  }

  let q = limited({ maxQueuedJobs: 3 })
  q.scheduleMany([job(), job()])
  refuses(() => q.scheduleMany([job(), job()]), 'limit_reached', /max_queued_jobs is 3/)
  t.equal(q.totalQueued, 2, 'a batch that does not fit is refused whole')
  q.schedule(job())
  refuses(() => q.schedule(job()), 'limit_reached', /holds 3 jobs/)
  q.receive('main')
  t.equal(q.schedule(job()).message, 'x', 'room again once a job is taken')

  q = limited({ maxQueuedBytes: 10 })
  q.schedule(job('12345'))
  refuses(() => q.schedule(job('123456')), 'limit_reached', /max_queued_bytes is 10/)
  q.schedule(job('\u00e9\u00e9')) // 2 characters, 4 bytes in UTF-8
  t.equal(q.queuedBytes, 9)
  q.receive('main')
  t.equal(q.queuedBytes, 4)

  q = limited({ maxMessageBytes: 4 })
  refuses(() => q.schedule(job('12345')), 'invalid_data', /^"message" is 5 bytes, over max_message_bytes \(4\)$/)
  refuses(() => q.scheduleMany([job('1'), job('12345')]), 'invalid_data', /^jobs\[1\]: "message" is 5 bytes/)
  t.equal(q.totalQueued, 0)

  q = limited({ maxLanes: 2 })
  q.schedule(job('a', 'second'))
  refuses(() => q.schedule(job('b', 'third')), 'limit_reached', /max_lanes is 2/)
  t.equal(q.receive('third'), undefined, 'a receive creates no lane, so meets no limit')
  refuses(() => q.scheduleMany([job('c', 'main'), job('d', 'fourth')]), 'limit_reached', /max_lanes/)
  t.same(q.laneNames(), ['main', 'second'])
  q.restore({ jobNum: 50, lane: 'restored', priority: 1, message: 'kept' })
  t.same(q.laneNames(), ['main', 'second', 'restored'], 'a snapshot loads whatever the limits')

  q = limited({ maxParkedReceivers: 2 })
  const a = new TestReceiver()
  const b = new TestReceiver()
  q.awaitJob('main', a)
  q.awaitJob('main', b)
  refuses(() => q.awaitJob('main', new TestReceiver()), 'limit_reached', /max_parked_receivers is 2/)
  q.schedule(job('for a'))
  t.equal(q.parkedReceivers, 1, 'a delivery frees a place')
  q.cancel('main', b)
  t.equal(q.parkedReceivers, 0, 'so does a cancel')
  q.schedule(job('ready'))
  const c = new TestReceiver()
  q.awaitJob('main', new TestReceiver())
  q.awaitJob('main', c)
  q.awaitJob('main', new TestReceiver())
  refuses(() => q.awaitJob('main', new TestReceiver()), 'limit_reached', /max_parked/)
  q.dismissAllParked()
  t.equal(q.parkedReceivers, 0)
  t.end()
})

t.test('runner slots are not receivers: max_parked_receivers and parked_receivers leave them out', (t) => {
  const q = new Queue({ limits: { ...NO_LIMITS, maxParkedReceivers: 1 } })
  class Slot extends TestReceiver {
    readonly countsAsParked = false
  }
  const slot = new Slot()
  const other = new Slot()
  q.awaitJob('work', slot)
  const client = new TestReceiver()
  q.awaitJob('main', client)
  t.equal(q.parkedReceivers, 1, 'a client parks beside an idle slot')
  q.awaitJob('work', other)
  t.equal(q.parkedReceivers, 1, 'a slot parks past the limit')
  q.schedule({ message: 'w', lane: 'work', priority: 1 })
  q.cancel('work', other)
  t.equal(q.parkedReceivers, 1, 'nor does delivering to a slot or cancelling one change the count')
  q.schedule({ message: 'm', lane: 'main', priority: 1 })
  t.equal(q.parkedReceivers, 0)
  q.awaitJob('work', slot)
  q.dismissAllParked()
  t.equal(q.parkedReceivers, 0, 'nor does dismissing them')
  t.same([slot.got.map((j) => j.message), client.got.map((j) => j.message)], [['w'], ['m']])
  t.end()
})
