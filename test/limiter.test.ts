import t from 'tap'
import { Limiter } from '../src/runners/limiter'

/** The fetch limiter: at most `max` at once, the rest in arrival order; a caller who leaves the line never runs. */

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}

t.test('runs at most max tasks at once, the others in arrival order; a task that leaves the line never runs', async (t) => {
  const limiter = new Limiter(2)
  const started: string[] = []
  const gates = new Map<string, ReturnType<typeof gate>>()
  const task = (name: string) => (): Promise<string> => {
    started.push(name)
    const g = gate()
    gates.set(name, g)
    return g.promise.then(() => name)
  }
  const a = limiter.run(task('a'))
  const b = limiter.run(task('b'))
  const leaving = new AbortController()
  const c = limiter.run(task('c'), leaving.signal)
  const d = limiter.run(task('d'))
  await Promise.resolve()
  t.same(started, ['a', 'b'])
  t.same(limiter.load, { running: 2, waiting: 2 })
  leaving.abort('the client left')
  await t.rejects(c, { message: 'the client left' })
  t.same(limiter.load, { running: 2, waiting: 1 })
  gates.get('a')!.open()
  t.equal(await a, 'a')
  const e = limiter.run(task('e'))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, ['a', 'b', 'd'], 'the freed place went to the first still in line (c left), and a later task waits')
  for (const name of ['b', 'd']) gates.get(name)!.open()
  await Promise.all([b, d])
  await new Promise((resolve) => setImmediate(resolve))
  gates.get('e')!.open()
  t.equal(await e, 'e')
  t.same(started, ['a', 'b', 'd', 'e'], 'c never ran')
  t.same(limiter.load, { running: 0, waiting: 0 })
  await t.rejects(limiter.run(task('f'), AbortSignal.abort('gone')), { message: 'gone' })
})

t.test('a task that throws frees its place', async (t) => {
  const limiter = new Limiter(1)
  await t.rejects(limiter.run(() => Promise.reject(new Error('boom'))), { message: 'boom' })
  t.equal(await limiter.run(() => Promise.resolve(7)), 7)
  t.same(limiter.load, { running: 0, waiting: 0 })
})
