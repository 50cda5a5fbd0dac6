import t from 'tap'
import { Job } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'
import { Queue } from '../src/queue/queue'
import { UniqueHold, UniqueKeys } from '../src/queue/unique'

/** Unique keys in the pure queue, on a hand-driven clock: who holds a key, until when, and what each change records. */

function setup(): { q: Queue; clock: { ms: number }; log: string[] } {
  const clock = { ms: 1_700_000_000_000 }
  const log: string[] = []
  const q = new Queue({
    clock: () => clock.ms,
    changes: {
      scheduled: () => undefined,
      taken: () => undefined,
      leased: () => undefined,
      acked: () => undefined,
      returned: () => undefined,
      buried: () => undefined,
      deleted: () => undefined,
      finished: () => undefined,
      uniqueHeld: (h) => log.push(`${h.key}:${h.jobNum}:${h.until - clock.ms}`),
      cronChanged: () => undefined,
      lanePaused: () => undefined,
    },
  })
  return { q, clock, log }
}

const unique = (key: string, forMs = 0) => ({ message: key, lane: 'main', priority: 1, unique: { key, forMs } })

t.test('a key is held by its queued job, then for forMs after a take, then free', (t) => {
  const { q, clock, log } = setup()
  const [job] = q.scheduleUnique([unique('k', 1000)])
  t.ok(job instanceof Job)
  const [dup] = q.scheduleUnique([unique('k', 1000)])
  t.ok(dup instanceof UniqueHold)
  t.equal((dup as UniqueHold).jobNum, 1)
  t.ok((dup as UniqueHold).active)
  q.receive('main')
  t.same(log, ['k:1:1000'], 'the take records the hold until forMs from now')
  clock.ms += 999
  t.ok(q.scheduleUnique([unique('k')])[0] instanceof UniqueHold, 'still held')
  clock.ms += 1
  t.ok(q.scheduleUnique([unique('k')])[0] instanceof Job, 'free at its time')
  t.end()
})

t.test('a taken job whose reply failed holds its key again; forMs 0 frees the key at the take', (t) => {
  const { q, log } = setup()
  q.scheduleUnique([unique('k')])
  const job = q.receive('main')!
  t.same(log, ['k:1:0'])
  t.equal(q.uniqueKeysHeld, 0)
  q.returnUndelivered(job, undefined)
  t.ok(q.scheduleUnique([unique('k')])[0] instanceof UniqueHold, 'back in its lane: held again')
  t.end()
})

t.test('a key held by a newer job is not taken back by an older one coming back', (t) => {
  const keys = new UniqueKeys()
  const older = new Job(1, stampOf('main', 1, 0), 'a', 'h1')
  const newer = new Job(2, stampOf('main', 1, 0), 'b', 'h2')
  keys.hold(older, { key: 'k', forMs: 0 })
  keys.finish(older, { key: 'k', forMs: 0 }, 10)
  keys.hold(newer, { key: 'k', forMs: 0 })
  keys.hold(older, { key: 'k', forMs: 0 })
  t.equal(keys.holder('main', 'k', 11)!.jobNum, 2, 'an active holder keeps its key')
  t.equal(keys.finish(older, { key: 'k', forMs: 50 }, 12), undefined, 'the older job finishing again does not touch it')
  keys.restore({ lane: 'main', key: 'k', hash: 'h1', jobNum: 1, until: 1000 }, 13)
  t.equal(keys.holder('main', 'k', 14)!.jobNum, 2, 'nor does a finished hold read back')
  t.end()
})

t.test('lane and key never run together', (t) => {
  const keys = new UniqueKeys()
  keys.hold(new Job(1, stampOf('ab', 1, 0), 'a', 'h1'), { key: 'c', forMs: 0 })
  t.equal(keys.holder('a', 'bc', 0), undefined)
  t.equal(keys.holder('ab', 'c', 0)!.jobNum, 1)
  t.end()
})

t.test('finished holds are listed for snapshots until they expire, and expired ones are dropped', (t) => {
  const { q, clock } = setup()
  q.scheduleUnique([unique('a', 100), unique('b', 200), unique('c', 0)])
  q.receive('main')
  q.receive('main')
  q.receive('main')
  t.same(q.finishedUniqueHolds().map((h) => [h.key, h.until - clock.ms]).sort(), [['a', 100], ['b', 200]])
  clock.ms += 150
  t.same(q.finishedUniqueHolds().map((h) => h.key), ['b'])
  t.equal(q.uniqueKeysHeld, 1)
  t.end()
})
