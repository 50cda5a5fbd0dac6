import t from 'tap'
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
