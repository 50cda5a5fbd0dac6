import t from 'tap'
import { codeOf } from './helpers/errors'
import type { ChangeLog } from '../src/queue/changes'
import { ByteWriter } from '../src/queue/bytes'
import { Held } from '../src/queue/held'
import type { Job } from '../src/queue/job'
import { PAGE_SORTS } from '../src/queue/pages'
import { Queue } from '../src/queue/queue'

/**
 * Batch leases (`count` with `lease`): the queue holds the jobs of one take as runs (one deadline
 * entry per run, no object per job). Each job's lease must behave exactly as a lease taken alone:
 * its own token, ack, release and touch, expiry back to its place, inspection and snapshots.
 */

class Clock {
  ms = 1_700_000_000_000
  readonly now = (): number => this.ms
}

function setup(): { q: Queue; clock: Clock; log: string[] } {
  const clock = new Clock()
  const log: string[] = []
  const changes: ChangeLog = {
    scheduled: () => undefined,
    taken: (j) => log.push(`taken:${j.jobNum}`),
    leased: (j) => log.push(`leased:${j.jobNum}`),
    acked: (j) => log.push(`acked:${j.jobNum}`),
    returned: (j, why) => log.push(`returned:${j.jobNum}:${why}`),
    buried: () => undefined,
    deleted: (j) => log.push(`deleted:${j.jobNum}`),
    lanePaused: () => undefined,
    finished: () => undefined,
    uniqueHeld: () => undefined,
    cronChanged: () => undefined,
  }
  return { q: new Queue({ clock: clock.now, changes, leaseTokenPrefix: 'p-' }), clock, log }
}

const nums = (jobs: readonly Job[]): number[] => jobs.map((j) => j.jobNum)
const ready = (q: Queue, lane = 'main'): number[] => nums(q.jobsInOrder(lane))
const leasedNums = (leases: readonly Held[]): number[] => leases.map((l) => l.job.jobNum)

function schedule(q: Queue, priorities: number[], lane = 'main'): void {
  for (const priority of priorities) q.schedule({ message: `p${priority}`, lane, priority })
}

t.test('a batch lease gives each job its own token, in serving order, as leases taken one by one would', (t) => {
  const { q, clock, log } = setup()
  schedule(q, [5, 5, 5, 5])
  const single = q.receiveLeased('main', 30_000)!
  const batch = q.receiveLeasedMany('main', 30_000, 10)
  t.same(leasedNums(batch), [2, 3, 4])
  t.same([single.token, ...batch.map((l) => l.token)], ['p-1', 'p-2', 'p-3', 'p-4'], 'lease numbers go on from the single lease')
  t.ok(batch.every((l) => l.at === clock.ms + 30_000 && l.leaseMs === 30_000 && l.leased))
  t.equal(q.leasedJobs, 4)
  t.equal(q.totalQueued, 4)
  t.equal(q.stats().leased.main, 4)
  t.same(q.receiveLeasedMany('main', 30_000, 10), [], 'nothing left to lease')
  t.same(log, ['leased:1', 'leased:2', 'leased:3', 'leased:4'])
  t.end()
})

t.test('ack, release and touch of batch-leased jobs check each job\'s token', (t) => {
  const { q, clock } = setup()
  schedule(q, [1, 1, 1, 1])
  const [a, b, c, d] = q.receiveLeasedMany('main', 10_000, 4)
  t.equal(codeOf(() => q.ack(a!.job.hash, b!.token)), 'not_leased', 'another job\'s token of the same batch')
  t.equal(q.ack(a!.job.hash, a!.token).jobNum, 1)
  t.equal(codeOf(() => q.ack(a!.job.hash, a!.token)), 'not_leased', 'acked twice')
  t.equal(q.release(b!.job.hash, b!.token).jobNum, 2)
  t.same(ready(q), [2])
  clock.ms += 4_000
  const touched = q.touch(c!.job.hash, c!.token, 20_000)
  t.equal(touched.at, clock.ms + 20_000)
  t.equal(touched.token, c!.token, 'touch keeps the token')
  t.equal(q.touch(c!.job.hash, c!.token).at, clock.ms + 20_000, 'touched again: its new length stays')
  t.equal(q.leasedJobs, 2)
  t.equal(q.stats().leased.main, 2)
  clock.ms += 6_000
  const expired = q.expireDue()
  t.same(nums(expired.leases), [4], 'the untouched job expires with its batch; the touched one does not')
  t.same(ready(q), [2, 4])
  t.equal(codeOf(() => q.ack(d!.job.hash, d!.token)), 'not_leased', 'an expired lease')
  t.equal(q.ack(c!.job.hash, c!.token).jobNum, 3, 'the touched lease is still in force')
  t.equal(q.leasedJobs, 0)
  t.equal(q.nextDeadline(), undefined, 'nothing held: no deadline left')
  t.equal(q.totalQueued, 2)
  t.end()
})

t.test('expired batch leases put their jobs back at their places, and a late token cannot end the next lease', (t) => {
  const { q, clock, log } = setup()
  schedule(q, [3, 3, 3])
  const first = q.receiveLeasedMany('main', 1_000, 2)
  q.schedule({ message: 'later', lane: 'main', priority: 3 })
  t.equal(q.nextDeadline(), clock.ms + 1_000)
  clock.ms += 999
  t.same(q.expireDue().leases, [], 'not due yet')
  clock.ms += 1
  t.same(nums(q.expireDue().leases), [1, 2])
  t.same(ready(q), [1, 2, 3, 4], 'ahead of the jobs scheduled after them')
  t.same(log.slice(-2), ['returned:1:lease expired', 'returned:2:lease expired'])
  const again = q.receiveLeasedMany('main', 1_000, 1)
  t.same(leasedNums(again), [1])
  t.equal(codeOf(() => q.ack(first[0]!.job.hash, first[0]!.token)), 'not_leased', 'the old holder\'s token')
  t.equal(q.ack(again[0]!.job.hash, again[0]!.token).jobNum, 1)
  t.end()
})

t.test('a job released and leased again in another batch is found under its new lease only', (t) => {
  const { q } = setup()
  schedule(q, [1, 1, 1])
  const [a] = q.receiveLeasedMany('main', 10_000, 3)
  q.release(a!.job.hash, a!.token)
  const [again] = q.receiveLeasedMany('main', 10_000, 3)
  t.equal(again!.job.jobNum, 1)
  t.equal(codeOf(() => q.release(a!.job.hash, a!.token)), 'not_leased')
  t.equal(q.findJob(a!.job.hash)?.state, 'leased')
  t.equal(q.findByNumber(1)?.state, 'leased')
  t.equal(q.touch(again!.job.hash, again!.token).token, again!.token)
  t.end()
})

t.test('a batch across priorities and far-apart job numbers keeps serving order and finds every job', (t) => {
  const { q, clock } = setup()
  // 3,000 jobs over three priorities: each priority's jobs are three numbers apart, and the batch
  // goes back down the numbers when it moves on to the next priority.
  for (let i = 0; i < 3_000; i++) q.schedule({ message: `m${i}`, lane: 'main', priority: i % 3 })
  const leases = q.receiveLeasedMany('main', 5_000, 2_500)
  const expected = [0, 1, 2].flatMap((p) => Array.from({ length: 1_000 }, (_, k) => 3 * k + p + 1)).slice(0, 2_500)
  t.same(leasedNums(leases), expected)
  t.same(leases.map((l) => l.token), leases.map((_, i) => `p-${i + 1}`))
  for (const lease of leases) t.equal(q.findJob(lease.job.hash)?.state, 'leased', `job ${lease.job.jobNum} found`)
  const acked = leases.filter((_, i) => i % 2 === 0)
  for (const lease of acked) q.ack(lease.job.hash, lease.token)
  t.equal(q.leasedJobs, 1_250)
  clock.ms += 5_000
  t.same(nums(q.expireDue().leases).sort((x, y) => x - y), leasedNums(leases.filter((_, i) => i % 2 === 1)).sort((x, y) => x - y))
  t.equal(q.leasedJobs, 0)
  t.equal(q.readyCount('main'), 3_000 - 1_250)
  t.end()
})

t.test('batch-leased jobs: deletes and moves answer 409, snapshots keep them at their place, an undelivered reply puts them back', (t) => {
  const { q, clock, log } = setup()
  schedule(q, [2, 1, 2, 1])
  const leases = q.receiveLeasedMany('main', 1_000, 3)
  t.same(leasedNums(leases), [2, 4, 1])
  t.equal(codeOf(() => q.deleteJob(leases[0]!.job.hash)), 'conflict')
  t.equal(codeOf(() => q.relocate(leases[0]!.job.hash, 'main', 7)), 'conflict')
  const main = q.snapshot().find((l) => l.lane === 'main')!
  t.equal(main.count, 4)
  t.same(main.parts.flat().map((j) => j.jobNum), [2, 4, 1, 3])
  t.same(nums(q.page({ lane: 'main', state: 'leased', sort: PAGE_SORTS[0], offset: 0, limit: 10 }).jobs).sort(), [1, 2, 4])
  q.ack(leases[1]!.job.hash, leases[1]!.token)
  t.equal(q.returnUndelivered(leases[1]!.job, leases[1]), false, 'acked already: not put back')
  t.equal(q.returnUndelivered(leases[0]!.job, leases[0]), true)
  t.same(log.slice(-1), ['returned:2:not delivered'])
  clock.ms += 1_000
  t.same(nums(q.expireDue().leases), [1], 'only the one still leased expires')
  t.equal(q.returnUndelivered(leases[2]!.job, leases[2]), false, 'expired already: not put back again')
  t.same(ready(q), [2, 1, 3])
  t.end()
})

t.test('a batch that starts with an old job and goes on with new ones far above it', (t) => {
  const { q, clock } = setup()
  q.schedule({ message: 'old', lane: 'main', priority: 0 })
  for (let i = 0; i < 5_000; i++) q.schedule({ message: `filler${i}`, lane: 'other', priority: 1 })
  for (let i = 0; i < 3; i++) q.schedule({ message: `new${i}`, lane: 'main', priority: 1 })
  const leases = q.receiveLeasedMany('main', 1_000, 10)
  t.same(leasedNums(leases), [1, 5_002, 5_003, 5_004])
  t.same(leases.map((l) => l.token), ['p-1', 'p-2', 'p-3', 'p-4'])
  t.equal(q.ack(leases[2]!.job.hash, leases[2]!.token).jobNum, 5_003)
  t.equal(q.findJob(leases[0]!.job.hash)?.state, 'leased')
  clock.ms += 1_000
  t.same(nums(q.expireDue().leases), [1, 5_002, 5_004])
  t.same(ready(q), [1, 5_002, 5_004])
  t.end()
})

t.test('a lease token matches only itself, for leases taken alone and in a batch', (t) => {
  const { q } = setup()
  schedule(q, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
  for (let i = 0; i < 9; i++) q.receiveLeased('main', 1_000)
  const single = q.receiveLeased('main', 1_000)!
  const [inBatch] = q.receiveLeasedMany('main', 1_000, 1)
  t.same([single.token, inBatch!.token], ['p-10', 'p-11'])
  for (const lease of [single, inBatch!]) {
    const near = [`${lease.token}0`, lease.token.slice(0, -1), `p-0${lease.token.slice(2)}`, `q-${lease.token.slice(2)}`, `${lease.token} `, `p-+${lease.token.slice(2)}`, 'p-', '', `p-${lease.token.slice(2)}.0`]
    for (const token of near) t.equal(codeOf(() => q.touch(lease.job.hash, token)), 'not_leased', `${JSON.stringify(token)} is not ${lease.token}`)
    t.equal(q.touch(lease.job.hash, lease.token).token, lease.token)
  }
  t.end()
})

t.test('jobs restored with an earlier process\'s hash are leased in a batch all the same', (t) => {
  const { q } = setup()
  q.restore({ jobNum: 10, hash: 'restored-10', message: 'a', lane: 'main', priority: 1 })
  q.restore({ jobNum: 11, hash: 'restored-11', message: 'b', lane: 'main', priority: 1 })
  schedule(q, [1])
  const leases = q.receiveLeasedMany('main', 1_000, 3)
  t.same(leasedNums(leases), [10, 11, 12])
  t.equal(q.ack('restored-11', leases[1]!.token).jobNum, 11)
  t.equal(q.release(leases[2]!.job.hash, leases[2]!.token).jobNum, 12)
  t.equal(q.touch('restored-10', leases[0]!.token).job.jobNum, 10)
  t.end()
})

t.test('a written token is the lease token, as leases of queues with other token starts and whole tokens alternate', (t) => {
  // Held.writeToken keeps the last token start as bytes: a change of start must show at once.
  const queues = ['a1b2c3d4-', 'ff-', 'a1b2c3d4-'].map((leaseTokenPrefix) => new Queue({ leaseTokenPrefix }))
  for (const q of queues) q.scheduleMany(['m1', 'm2', 'm3', 'm4', 'm5', 'm6'].map((message) => ({ message, lane: 'main', priority: 0 })))
  const leases: Held[] = []
  for (let round = 0; round < 3; round++) for (const q of queues) leases.push(...q.receiveLeasedMany('main', 30_000, 1), q.receiveLeased('main', 30_000)!)
  const whole = new Held(leases[0]!.job, 0, 30_000, 2, 'a-whole-token-from-another-store')
  for (const lease of [...leases, whole, ...leases.reverse()]) {
    const out = new ByteWriter(16)
    out.reserve(lease.tokenBound)
    lease.writeToken(out)
    t.equal(out.buf.toString('latin1', 0, out.pos), lease.token)
  }
  t.end()
})
