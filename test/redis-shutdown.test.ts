import t from 'tap'
import { call, until } from './helpers/daemon'
import { frontendsWithProxy, parked } from './helpers/frontends'

/**
 * A frontend stopped (SIGTERM) while a take for a parked receiver is under way in Redis: the
 * receiver is told "shutting down, nothing taken", so the job that take brings must go back to
 * its lane before the store's connection closes. A proxy in front of redis-server holds the take's
 * reply until the receiver has been answered, so the take is exactly in flight at shutdown.
 */
t.test('SIGTERM with a take in flight puts its job back before closing the store', async (t) => {
  const { a, b, proxy } = await frontendsWithProxy(t)

  // B has met the lane (it knows its id), so its next take goes straight to the lane.
  await call(`${a.url}/schedule`, { lane: 'stop', message: 'warm-up' })
  t.equal((await call(`${b.url}/receive_noblock`, { lane: 'stop' })).body.message, 'warm-up')
  const waiting = call(`${b.url}/receive_block`, { lane: 'stop', timeout: 30 })
  await until(async () => (await parked(b)) === 1, 'the receiver to park on B')
  proxy.hold()
  const { hash } = (await call(`${a.url}/schedule`, { lane: 'stop', message: 'not lost' })).body as { hash: string }
  await until(async () => (await call(`${a.url}/job?hash=${hash}`)).body.code === 11, 'B\'s take to take the job in Redis', 10_000)
  const exited = b.stop('SIGTERM')
  const answered = await waiting
  t.equal(answered.body.code, 5, `the receiver is dismissed (code 5: nothing was taken): ${JSON.stringify(answered.body)}`)
  proxy.release()
  t.equal(await exited, 0, 'B stops cleanly')
  const again = await call(`${a.url}/receive_noblock`, { lane: 'stop' })
  t.equal(again.body.hash, hash, `the job is back in its lane: ${JSON.stringify(again.body)}`)
})
