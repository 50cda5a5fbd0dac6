import t from 'tap'
import { codeOf } from './helpers/errors'
import type { ChangeLog } from '../src/queue/changes'
import type { Job } from '../src/queue/job'
import { Queue } from '../src/queue/queue'

/** Leases, releases and delays in the pure queue: a hand-driven clock, no timers, no sockets. */

class Clock {
  ms = 1_700_000_000_000
  readonly now = (): number => this.ms
}

/** Records every change the queue reports, as "kind:job_num" strings. */
function recordingLog(into: string[]): ChangeLog {
  return {
    scheduled: (j) => into.push(`scheduled:${j.jobNum}`),
    taken: (j) => into.push(`taken:${j.jobNum}`),
    leased: (j) => into.push(`leased:${j.jobNum}`),
    acked: (j) => into.push(`acked:${j.jobNum}`),
    returned: (j, why) => into.push(`returned:${j.jobNum}:${why}`),
    buried: (j) => into.push(`buried:${j.jobNum}`),
    deleted: (j) => into.push(`deleted:${j.jobNum}`),
    lanePaused: (lane, paused) => into.push(`${paused ? 'paused' : 'resumed'}:${lane}`),
    finished: (j) => into.push(`finished:${j.jobNum}`),
    uniqueHeld: (h) => into.push(`unique:${h.jobNum}:${h.key}`),
    cronChanged: (name) => into.push(`cron:${name}`),
  }
}

function setup(): { q: Queue; clock: Clock; log: string[]; deadlines: number[] } {
  const clock = new Clock()
  const log: string[] = []
  const deadlines: number[] = []
  const q = new Queue({ clock: clock.now, changes: recordingLog(log), onDeadline: (at) => deadlines.push(at) })
  return { q, clock, log, deadlines }
}

function nums(jobs: Job[]): number[] {
  return jobs.map((j) => j.jobNum)
}

function ready(q: Queue, lane = 'main'): number[] {
  return nums(q.jobsInOrder(lane))
}

t.test('a leased job leaves the lane until acked, and ack removes it for good', (t) => {
  const { q, clock, log } = setup()
  q.schedule({ message: 'a', lane: 'main', priority: 5 })
  q.schedule({ message: 'b', lane: 'main', priority: 5 })
  const held = q.receiveLeased('main', 30_000)!
  t.equal(held.job.jobNum, 1)
  t.equal(held.at, clock.ms + 30_000)
  t.same(ready(q), [2])
  t.equal(q.totalQueued, 2, 'a leased job still counts as held in memory')
  t.equal(q.stats().leased.main, 1)
  t.equal(q.ack(held.job.hash, held.token).jobNum, 1)
  t.equal(q.totalQueued, 1)
  t.equal(q.leasedJobs, 0)
  t.equal(codeOf(() => q.ack(held.job.hash, held.token)), 'not_leased')
  t.same(log, ['scheduled:1', 'scheduled:2', 'leased:1', 'acked:1'])
  t.end()
})

t.test('an expired lease puts the job back at its original place, ahead of newer jobs', (t) => {
  const { q, clock, log, deadlines } = setup()
  for (let i = 0; i < 3; i++) q.schedule({ message: `m${i}`, lane: 'main', priority: 7 })
  const first = q.receiveLeased('main', 1_000)!
  q.schedule({ message: 'later', lane: 'main', priority: 7 })
  t.same(deadlines, [clock.ms + 1_000], 'the owner of the timer hears of the new earliest deadline')
  t.equal(q.nextDeadline(), clock.ms + 1_000)
  clock.ms += 999
  t.same(q.expireDue().leases, [], 'not due yet')
  clock.ms += 1
  t.same(nums(q.expireDue().leases), [1])
  t.same(ready(q), [1, 2, 3, 4], 'job 1 is first again')
  t.equal(q.nextDeadline(), undefined)
  t.equal(codeOf(() => q.ack(first.job.hash, first.token)), 'not_leased', 'an expired lease cannot be acked')
  t.same(log.slice(-1), ['returned:1:lease expired'])
  t.end()
})

t.test('a higher-priority job put back goes before lower-priority ones', (t) => {
  const { q } = setup()
  q.schedule({ message: 'urgent', lane: 'main', priority: 1 })
  q.schedule({ message: 'routine', lane: 'main', priority: 9 })
  const held = q.receiveLeased('main', 5_000)!
  q.release(held.job.hash, held.token)
  t.same(ready(q), [1, 2])
  t.end()
})

t.test('touch extends a lease from now; release with a delay returns the job later', (t) => {
  const { q, clock } = setup()
  q.schedule({ message: 'a', lane: 'main', priority: 1 })
  const held = q.receiveLeased('main', 1_000)!
  clock.ms += 800
  t.equal(q.touch(held.job.hash, held.token).at, clock.ms + 1_000, 'the original length again')
  clock.ms += 900
  t.same(q.expireDue().leases, [], 'touched: not expired')
  t.equal(q.touch(held.job.hash, held.token, 5_000).at, clock.ms + 5_000, 'a new length')
  q.release(held.job.hash, held.token, 2_000)
  t.same(ready(q), [], 'delayed: not ready yet')
  t.equal(q.stats().delayed.main, 1)
  t.equal(codeOf(() => q.touch(held.job.hash, held.token)), 'not_leased', 'no longer leased')
  t.equal(q.receive('main'), undefined)
  clock.ms += 2_000
  t.same(q.expireDue(), { leases: [], lanes: new Set(['main']) })
  t.same(ready(q), [1])
  t.end()
})

t.test('deadlines come due in order whatever order they were set in', (t) => {
  const { q, clock } = setup()
  for (let i = 0; i < 50; i++) q.schedule({ message: `m${i}`, lane: 'main', priority: 1 })
  const leaseMs = Array.from({ length: 50 }, (_, i) => ((i * 37) % 50) * 100 + 100)
  const leased = leaseMs.map((ms) => q.receiveLeased('main', ms)!)
  const expiredOrder: number[] = []
  for (let step = 0; step <= 50; step++) {
    clock.ms += 100
    expiredOrder.push(...nums(q.expireDue().leases))
  }
  const expected = leased.map((h, i) => [h.job.jobNum, leaseMs[i]!] as const).sort((a, b) => a[1] - b[1]).map(([n]) => n)
  t.same(expiredOrder, expected)
  t.same(ready(q), Array.from({ length: 50 }, (_, i) => i + 1), 'all back, in job order')
  t.end()
})

t.test('a reply that cannot be delivered ends the lease, or returns a taken job', (t) => {
  const { q, log } = setup()
  q.schedule({ message: 'a', lane: 'main', priority: 1 })
  q.schedule({ message: 'b', lane: 'main', priority: 1 })
  const held = q.receiveLeased('main', 10_000)!
  const taken = q.receive('main')!
  q.returnUndelivered(held.job, held)
  q.returnUndelivered(taken, undefined)
  t.equal(q.leasedJobs, 0)
  t.same(ready(q), [1, 2])
  t.same(log.slice(2), ['leased:1', 'taken:2', 'returned:1:not delivered', 'returned:2:not delivered'])
  t.end()
})

t.test('snapshots include leased and delayed jobs at their place', (t) => {
  const { q } = setup()
  for (const priority of [3, 1, 2, 1]) q.schedule({ message: `p${priority}`, lane: 'main', priority })
  q.schedule({ message: 'other', lane: 'x', priority: 1 })
  const a = q.receiveLeased('main', 1_000)! // job 2 (priority 1)
  const b = q.receiveLeased('main', 1_000)! // job 4 (priority 1)
  q.release(b.job.hash, b.token, 60_000)
  t.same([a.job.jobNum, b.job.jobNum], [2, 4])
  const main = q.snapshot().find((l) => l.lane === 'main')!
  t.equal(main.count, 4)
  t.same(main.parts.flat().map((j) => j.jobNum), [2, 4, 3, 1])
  t.end()
})

