import t from 'tap'
import { call, removeDir, startDaemon, until } from './helpers/daemon'

t.test('throttle_schedule spaces schedules 25 ms apart without blocking other requests', async (t) => {
  const d = await startDaemon({ args: ['--throttle-schedule'] })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const started = Date.now()
  let statusAnsweredAt = 0
  const schedules = Promise.all(Array.from({ length: 12 }, (_, i) => call(`${d.url}/schedule`, { message: `t${i}` })))
  const status = call(`${d.url}/`).then((r) => {
    statusAnsweredAt = Date.now()
    return r
  })
  const replies = await schedules
  const elapsed = Date.now() - started
  t.equal((await status).status, 200)
  t.ok(replies.every((r) => r.status === 200))
  t.ok(elapsed >= 11 * 25, `12 throttled schedules took ${elapsed} ms (at least 275 ms)`)
  t.ok(statusAnsweredAt - started < elapsed, 'status was answered before the throttled schedules finished')
  const listed = (await call(`${d.url}/jobs`)).body.main as { message: string }[]
  t.equal(listed.length, 12)
})

t.test('throttle_receive spaces receives 25 ms apart', async (t) => {
  const d = await startDaemon({ args: ['--throttle-receive'] })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  for (let i = 0; i < 8; i++) await call(`${d.url}/schedule`, { message: `r${i}` })
  const started = Date.now()
  const got = await Promise.all(Array.from({ length: 8 }, () => call(`${d.url}/receive_noblock`)))
  const elapsed = Date.now() - started
  t.equal(new Set(got.map((r) => r.body.message)).size, 8)
  t.ok(elapsed >= 7 * 25, `8 throttled receives took ${elapsed} ms (at least 175 ms)`)
})

t.test('a schedule waiting for its throttle slot at shutdown is refused, not lost', async (t) => {
  const d = await startDaemon({ args: ['--throttle-schedule'] })
  t.teardown(() => removeDir(d.dataDir))
  const replies = Array.from({ length: 40 }, (_, i) => call(`${d.url}/schedule`, { message: `s${i}` }).catch(() => undefined))
  await until(async () => ((await call(`${d.url}/`)).body.payload as { queued_jobs: { main: number } }).queued_jobs.main >= 2, 'some accepted')
  t.equal(await d.stop(), 0)
  const settled = await Promise.all(replies)
  const accepted = settled.filter((r) => r?.status === 200).map((r) => r!.body.job_num)
  const refused = settled.filter((r) => r?.status === 503)
  t.ok(refused.length > 0, `${refused.length} refused with 503`)
  t.ok(refused.every((r) => r!.body.code === 5))
  t.equal(accepted.length + refused.length, 40, 'every request was answered: accepted or refused')
  const restarted = await startDaemon({ dataDir: d.dataDir })
  t.teardown(() => restarted.stop())
  const saved = ((await call(`${restarted.url}/jobs`)).body.main as { job_num: number }[]).map((j) => j.job_num)
  t.same(saved.sort((a, b) => a - b), accepted.sort((a, b) => (a as number) - (b as number)), 'every acknowledged job is in the snapshot')
})
