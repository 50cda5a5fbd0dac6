import t from 'tap'
import { call, until } from './helpers/daemon'
import { frontendsWithProxy, parked, storeState } from './helpers/frontends'

/**
 * Redis ran a command and its reply was lost (held back by a proxy past the command timeout): the
 * client must learn that the outcome is unknown, never lose a job in silence.
 */

t.test('a parked receive_block whose take ran in Redis but whose reply was lost is told so', async (t) => {
  const { a, b, proxy } = await frontendsWithProxy(t)

  for (const [name, body] of [
    ['a single receiver', { lane: 'lost', timeout: 8 }],
    ['a batch receiver', { lane: 'lost-batch', timeout: 8, count: 5 }],
  ] as const) {
    t.test(name, async (t) => {
      // B has met the lane (it knows its id), so its next take goes straight to the lane.
      await call(`${a.url}/schedule`, { lane: body.lane, message: 'warm-up' })
      t.equal((await call(`${b.url}/receive_noblock`, { lane: body.lane })).body.message, 'warm-up')
      const waiting = call(`${b.url}/receive_block`, body)
      await until(async () => (await parked(b)) === 1, 'the receiver to park on B')
      proxy.hold()
      const { hash } = (await call(`${a.url}/schedule`, { lane: body.lane, message: 'only once' })).body as { hash: string }
      // B's take (woken by its poll: the hint is held too) takes the job for good in Redis.
      await until(async () => (await call(`${a.url}/job?hash=${hash}`)).body.code === 11, 'the job to be taken in Redis', 10_000)
      const got = await waiting
      proxy.release()
      t.equal(got.body.code, 14, `the receiver is told the outcome is unknown, not left waiting for a job it lost: ${JSON.stringify(got.body)}`)
      t.match(got.body.message, /outcome is unknown/)
      t.equal(got.status, 503)
      await until(async () => (await storeState(b)) === 'up', 'B to recover', 15_000)
    })
  }
})
