import t from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
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
