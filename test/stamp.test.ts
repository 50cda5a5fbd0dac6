import t from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { HashScheme, hashSchemes, processHashes } from '../src/queue/hash'
import type { Job } from '../src/queue/job'
import { Queue } from '../src/queue/queue'
import { LaneStamps, stampOf } from '../src/queue/stamp'

t.test('jobs of one lane, priority and second share a stamp; any other job has its own fields', (t) => {
  let now = 1_700_000_000_000
  const queue = new Queue({ clock: () => now })
  const a = queue.schedule({ lane: 'main', priority: 5, message: 'a' })
  const b = queue.schedule({ lane: 'main', priority: 7, message: 'b' })
  const c = queue.schedule({ lane: 'main', priority: 5, message: 'c' })
  const d = queue.schedule({ lane: 'other', priority: 5, message: 'd' })
  now += 1000
  const e = queue.schedule({ lane: 'main', priority: 5, message: 'e' })
  const seen = [a, b, c, d, e].map((job) => [job.lane, job.priority, job.created])
  t.same(seen, [['main', 5, 1_700_000_000], ['main', 7, 1_700_000_000], ['main', 5, 1_700_000_000], ['other', 5, 1_700_000_000], ['main', 5, 1_700_000_001]])
  const stamp = (job: object): unknown => (job as { stamp: unknown }).stamp
  t.equal(stamp(a), stamp(c), 'a and c share one stamp')
  t.not(stamp(a), stamp(b))
  t.not(stamp(a), stamp(d))
  t.not(stamp(a), stamp(e))
  t.end()
})

t.test('a lane that sees ever new priorities and seconds keeps giving the right fields (its table starts afresh past its cap)', (t) => {
  const stamps = new LaneStamps('work')
  const wrong: string[] = []
  for (let i = 0; i < 20_000; i++) {
    const priority = (i * 7919) % 4_294_967_296
    const created = 1_700_000_000 + (i % 3)
    const stamp = stamps.of(priority, created)
    if (stamp.lane !== 'work' || stamp.priority !== priority || stamp.created !== created) wrong.push(`${i}: ${JSON.stringify(stamp)}`)
  }
  t.same(wrong, [])
  t.equal(stamps.of(4_294_967_295, 9), stamps.of(4_294_967_295, 9), 'the latest is still shared')
  t.end()
})

t.test('stampOf: a stamp of its own with the given fields, for callers without a lane, over many lanes', (t) => {
  t.not(stampOf('x', 1, 2), stampOf('x', 1, 2), 'no table shares it (see the test of stamps of jobs that are gone)')
  const wrong: string[] = []
  for (let i = 0; i < 3000; i++) {
    const stamp = stampOf(`lane${i}`, i, i + 1)
    if (stamp.lane !== `lane${i}` || stamp.priority !== i || stamp.created !== i + 1) wrong.push(String(i))
  }
  t.same(wrong, [])
  t.end()
})

t.test('restored jobs keep their hash whichever way it is held (string, an earlier scheme, this process), with their extras, through moves', (t) => {
  const now = 1_700_000_000_000
  const earlier = new HashScheme()
  t.ok(hashSchemes.adopt(earlier.key), 'an earlier process\'s scheme, as state.json names it')
  const queue = new Queue({ clock: () => now })
  const ours = queue.schedule({ lane: 'main', priority: 5, message: 'ours', group: 'g' })
  const kinds = [
    queue.restore({ jobNum: 900, hash: 'not-derived-by-any-scheme', created: 1_600_000_000, lane: 'main', priority: 5, message: 'string', attempts: 2 }),
    queue.restore({ jobNum: 901, hash: earlier.hashOf(901), created: 1_600_000_000, lane: 'main', priority: 5, message: 'earlier', attempts: 3, group: 'h' }),
    queue.restore({ jobNum: 902, scheme: hashSchemes.deriving(earlier.hashOf(902), 902)!, created: 1_600_000_001, lane: 'main', priority: 5, message: 'earlier, read as a scheme' }),
    queue.restore({ jobNum: 903, hash: processHashes.hashOf(903), lane: 'main', priority: 5, message: 'this process' }),
    ours,
  ]
  const view = (job: Job): unknown[] => [job.jobNum, job.hash, job.lane, job.priority, job.created, job.message, job.attempts, job.group ?? null, job.restoredHash]
  const expected = [
    [900, 'not-derived-by-any-scheme', 'main', 5, 1_600_000_000, 'string', 2, null, 'not-derived-by-any-scheme'],
    [901, earlier.hashOf(901), 'main', 5, 1_600_000_000, 'earlier', 3, 'h', null],
    [902, earlier.hashOf(902), 'main', 5, 1_600_000_001, 'earlier, read as a scheme', 0, null, null],
    [903, processHashes.hashOf(903), 'main', 5, 1_700_000_000, 'this process', 0, null, null],
    [ours.jobNum, processHashes.hashOf(ours.jobNum), 'main', 5, 1_700_000_000, 'ours', 0, 'g', null],
  ]
  t.same(kinds.map(view), expected, 'as restored')
  t.equal(kinds[1]!.scheme?.key, earlier.key, 'a hash an earlier scheme derives is held as that scheme')
  t.equal(kinds[0]!.scheme, undefined, 'a string hash has no scheme')
  const moved = kinds.map((job) => queue.relocate(job.hash, 'other', 9))
  t.same(moved.map(view), expected.map(([num, hash, , , created, message, attempts, group, restored]) => [num, hash, 'other', 9, created, message, attempts, group, restored]), 'moved: only lane and priority change')
  for (const job of moved) t.equal(queue.findJob(job.hash)?.job, job, `job ${job.jobNum} is found by its hash after the move`)
  t.end()
})

/** A full collection, asked for at run time (the test runner starts node without --expose-gc). */
function collectGarbage(): () => void {
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

/** Waits a turn (a WeakRef's target is kept to the end of the turn that made it), then collects. */
async function collected(refs: WeakRef<object>[]): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve))
  collectGarbage()()
  return refs.filter((ref) => ref.deref() === undefined).length
}

const stampRef = (job: object): WeakRef<object> => new WeakRef((job as { stamp: object }).stamp)

t.test('stamps of jobs that are gone are not kept: a lane forgets a priority once it has no ready job there (past 16), and moves keep no table of their own', async (t) => {
  // Priorities that are seconds (deadlines) are all distinct: every job gets its own stamp. Kept
  // after the jobs go, 4,096 a lane over 1,024 lanes held 386 MB of an empty daemon's heap.
  let now = 1_700_000_000_000
  const queue = new Queue({ clock: () => now })
  const refs: WeakRef<object>[] = []
  for (let i = 0; i < 200; i++) refs.push(stampRef(queue.schedule({ lane: `lane${i % 4}`, priority: 4_294_967_295 - i, message: 'm' })))
  for (let i = 0; i < 4; i++) while (queue.receive(`lane${i}`) !== undefined);
  t.ok((await collected(refs)) >= 200 - 4 * 16, 'the stamps of received jobs are freed, but for the 16 a lane keeps')

  const moved: WeakRef<object>[] = []
  for (let i = 0; i < 200; i++) {
    const job = queue.schedule({ lane: 'from', priority: 1, message: 'm' })
    moved.push(stampRef(queue.relocate(job.hash, `to${i % 4}`, 1_000_000 + i)))
    now += 1000
  }
  for (let i = 0; i < 4; i++) while (queue.receive(`to${i}`) !== undefined);
  while (queue.receive('from') !== undefined);
  t.ok((await collected(moved)) >= 200 - 4 * 16, 'the stamps of moved jobs are freed once they are received, but for the 16 a lane keeps')

  const decoded: WeakRef<object>[] = []
  for (let i = 0; i < 200; i++) decoded.push(new WeakRef(stampOf(`lane${i}`, i, 1_700_000_000)))
  t.equal(await collected(decoded), 200, 'stampOf keeps no table')
})
