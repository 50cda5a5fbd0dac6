import t from 'tap'
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

t.test('stampOf: the same sharing for callers without a lane, over many lanes', (t) => {
  t.equal(stampOf('x', 1, 2), stampOf('x', 1, 2))
  t.not(stampOf('x', 1, 2), stampOf('y', 1, 2))
  const wrong: string[] = []
  for (let i = 0; i < 3000; i++) {
    const stamp = stampOf(`lane${i}`, i, i + 1)
    if (stamp.lane !== `lane${i}` || stamp.priority !== i || stamp.created !== i + 1) wrong.push(String(i))
  }
  t.same(wrong, [])
  t.end()
})
