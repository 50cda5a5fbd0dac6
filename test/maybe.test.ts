import { execFileSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { Durable } from '../src/store/durable'
import { when } from '../src/store/job-store'

/** What `when` called, in order, once every microtask has run. */
async function outcome(value: number | Promise<number>, next: (v: number) => void): Promise<string[]> {
  const calls: string[] = []
  when(
    value,
    (v) => {
      calls.push(`next ${v}`)
      next(v)
    },
    (err) => calls.push(`failed ${(err as Error).message}`),
  )
  await new Promise((resolve) => setImmediate(resolve))
  return calls
}

t.test('when: a value or a promise reaches next; a rejection or a throw of next reaches failed, once', async (t) => {
  const fine = (): void => undefined
  const throws = (): void => {
    throw new Error('reply failed')
  }
  t.strictSame(await outcome(1, fine), ['next 1'])
  t.strictSame(await outcome(Promise.resolve(2), fine), ['next 2'])
  t.strictSame(await outcome(Promise.reject(new Error('journal failed')), fine), ['failed journal failed'])
  t.strictSame(await outcome(3, throws), ['next 3', 'failed reply failed'])
  t.strictSame(await outcome(Promise.resolve(4), throws), ['next 4', 'failed reply failed'])
})

t.test('when: next runs in the microtasks of the turn that settles the promise', async (t) => {
  let settle!: (v: number) => void
  const calls: number[] = []
  when(new Promise<number>((resolve) => (settle = resolve)), (v) => calls.push(v), () => undefined)
  settle(5)
  await Promise.resolve()
  await Promise.resolve()
  t.strictSame(calls, [5], 'answered within two microtask hops, before any I/O')
})

/** A value settled after `when` listened, as the journal settles it: now (err undefined) or with an error. */
function durableLater(v: number, err?: Error): Durable<number> {
  const later = new Durable(v)
  setImmediate(() => later.settle(err))
  return later
}

t.test('when on a Durable: its value reaches next, its error or a throw of next reaches failed, once', async (t) => {
  const fine = (): void => undefined
  const throws = (): void => {
    throw new Error('reply failed')
  }
  t.strictSame(await outcome(durableLater(6), fine), ['next 6'])
  t.strictSame(await outcome(durableLater(7, new Error('journal failed')), fine), ['failed journal failed'])
  t.strictSame(await outcome(durableLater(8), throws), ['next 8', 'failed reply failed'])
  const settled = new Durable(9)
  settled.settle()
  settled.settle(new Error('too late'))
  t.strictSame(await outcome(settled, fine), ['next 9'], 'listened to after it settled: at once; a second settle changes nothing')
})

t.test('when on a Durable: next runs inside settle, with no microtask in between', (t) => {
  const later = new Durable('job 1')
  const calls: string[] = []
  when(later, (v) => calls.push(v), () => calls.push('failed'))
  t.strictSame(calls, [], 'nothing before it is durable')
  later.settle()
  t.strictSame(calls, ['job 1'], 'answered synchronously, in the callback that reports the write')
  t.end()
})

t.test('a Durable is a promise to everyone else: await, then, catch, finally, several listeners', async (t) => {
  const ok = new Durable(10)
  const chained = ok.then((v) => v + 1)
  const alsoListening: number[] = []
  ok.listen((v) => alsoListening.push(v), () => undefined)
  setImmediate(() => ok.settle())
  t.equal(await ok, 10, 'await')
  t.equal(await chained, 11, 'then')
  t.strictSame(alsoListening, [10], 'a second listener hears too')
  const failed = new Durable(12)
  setImmediate(() => failed.settle(new Error('disk full')))
  await t.rejects(failed, { message: 'disk full' }, 'await rejects')
  t.equal(await failed.catch((err: unknown) => (err as Error).message), 'disk full', 'catch')
  let finalized = false
  await failed.finally(() => (finalized = true)).catch(() => undefined)
  t.ok(finalized, 'finally')
  t.equal(Object.prototype.toString.call(ok), '[object Durable]')
})

// settle runs inside the journal's loop over a write's changes: a listener that throws from its
// failed callback must not stop the others from hearing, nor settle from returning. The fault is
// raised on its own, as an uncaught exception (a child process, so that tap's own handler is not it).
t.test('a failed callback that throws leaves the other listeners told; the fault is raised, not swallowed', (t) => {
  const durable = path.resolve(__dirname, '..', 'dist', 'src', 'store', 'durable.js')
  const script = `
    const { Durable } = require(${JSON.stringify(durable)})
    const heard = []
    process.on('uncaughtException', (err) => heard.push('raised ' + err.message))
    for (const error of [new Error('disk full'), undefined]) {
      const d = new Durable(1)
      d.listen(() => { throw new Error('next threw') }, (err) => { throw new Error('failed threw after ' + err.message) })
      d.listen((v) => heard.push('second heard ' + v), (err) => heard.push('second failed ' + err.message))
      d.settle(error)
      heard.push('settle returned')
    }
    setImmediate(() => console.log(JSON.stringify(heard)))
  `
  const heard = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[]
  t.strictSame(heard, [
    'second failed disk full',
    'settle returned',
    'second heard 1',
    'settle returned',
    'raised failed threw after disk full',
    'raised failed threw after next threw',
  ])
  t.end()
})
