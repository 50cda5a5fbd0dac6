import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { RateLimits } from '../src/service/rate-limits'
import { DEFAULT_LANE_SETTINGS } from '../src/service/lane-settings'
import { call, removeDir, startDaemon, tempDir } from './helpers/daemon'

/** Rate limits: a token bucket per lane; receivers wait for tokens rather than being refused. */

t.test('a token bucket gives its rate, at most its burst at once', (t) => {
  const rates = new RateLimits()
  rates.configure(Object.assign(Object.create(null), { a: { ...DEFAULT_LANE_SETTINGS, rate: { jobs: 10, perMs: 1000, burst: 3 } } }), 0)
  t.equal(rates.grant('a', 5, 0), 3, 'the burst at once')
  t.equal(rates.grant('a', 5, 50), 0)
  t.equal(rates.msUntil('a', 1, 50), 50)
  t.equal(rates.grant('a', 5, 100), 1, 'one every 100 ms')
  t.equal(rates.grant('a', 5, 10_000), 3, 'never more than the burst')
  t.equal(rates.grant('b', 5, 0), 5, 'a lane without a rate is not limited')
  t.end()
})

t.test('a lane\'s rate holds within 10% over 10 s for blocking receivers; noblock receives find nothing while it is spent', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { mail: { rate: { jobs: 20, per: 1, burst: 2 } }, slow: { rate: { jobs: 1, per: 3600 } } } }))
  const d = await startDaemon({ dataDir: dir, args: ['--config', config] })
  t.teardown(() => d.stop())
  await call(`${d.url}/schedule`, { jobs: Array.from({ length: 1000 }, (_, i) => ({ lane: 'mail', message: `m${i}` })) })
  await call(`${d.url}/schedule`, { jobs: [{ lane: 'slow', message: 'a' }, { lane: 'slow', message: 'b' }] })
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'slow' })).body.code, 0, 'the burst')
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'slow' })).body.code, 2, 'spent: empty for now')
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'slow', count: 5 })).body.count, 0, 'a batch too')
  const started = Date.now()
  let received = 0
  const consumer = async (): Promise<void> => {
    while (Date.now() - started < 10_000) {
      const got = await call(`${d.url}/receive_block`, { lane: 'mail', timeout: Math.max(0.05, (10_000 - (Date.now() - started)) / 1000) })
      if (got.body.code === 0 && Date.now() - started <= 10_000) received++
    }
  }
  await Promise.all(Array.from({ length: 8 }, consumer))
  t.ok(Math.abs(received - 200) <= 20, `${received} jobs in 10 s at 20/s (and a burst of 2)`)
})

t.test('a blocking batch receive waits for tokens as a single one does, and for a full bucket when its min is above the burst', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { slow: { rate: { jobs: 1, per: 3600 } }, fast: { rate: { jobs: 20, per: 1, burst: 2 } } } }))
  const d = await startDaemon({ dataDir: dir, args: ['--config', config] })
  t.teardown(() => d.stop())
  await call(`${d.url}/schedule`, { jobs: ['a', 'b'].map((message) => ({ lane: 'slow', message })) })
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'slow' })).body.message, 'a', 'the only token')
  const started = Date.now()
  const spent = await call(`${d.url}/receive_block`, { lane: 'slow', count: 5, timeout: 0.5 })
  t.same([spent.body.code, spent.body.count], [2, 0], 'no token by its timeout: an empty batch')
  t.ok(Date.now() - started >= 450, `answered at its timeout, not at once (${Date.now() - started} ms)`)

  await call(`${d.url}/schedule`, { jobs: Array.from({ length: 6 }, (_, i) => ({ lane: 'fast', message: `f${i}` })) })
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'fast', count: 2 })).body.count, 2, 'the burst spent')
  // min 4 is above the burst of 2: the bucket never holds 4 tokens, so the receiver takes a full
  // bucket's worth once it is there (100 ms at 20 a second), long before its timeout.
  const waited = Date.now()
  const got = await call(`${d.url}/receive_block`, { lane: 'fast', count: 5, min: 4, timeout: 30 })
  t.same([got.body.code, got.body.count], [0, 2], 'a full bucket, not what one token gave at once nor an empty batch')
  t.ok(Date.now() - waited < 20_000, 'not held until its timeout')
})
