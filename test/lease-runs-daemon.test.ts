import t from 'tap'
import { call, removeDir, startDaemon } from './helpers/daemon'

/** Batch leases of a thousand jobs over many priorities and two lanes, against the real daemon with a journal. */

interface Leased { job_num: number; hash: string; message: string; lease_token: string }

t.test('batch leases over 100 priorities: tokens, counts, metrics and a SIGKILL restart', async (t) => {
  const args = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']
  const d = await startDaemon({ args })
  let stopped = false
  t.teardown(async () => {
    if (!stopped) await d.stop()
  })
  for (const lane of ['a', 'b']) {
    for (let chunk = 0; chunk < 3; chunk++) {
      const jobs = Array.from({ length: 1000 }, (_, i) => ({ message: `${lane}${chunk * 1000 + i}`, lane, priority: i % 100 }))
      const r = await call(`${d.url}/schedule`, { jobs })
      t.equal(r.status, 200, r.text)
    }
  }
  const got = await call(`${d.url}/receive_noblock`, { lane: 'a', count: 1000, lease: 60 })
  const leased = got.body.jobs as Leased[]
  t.equal(leased.length, 1000)
  const single = await call(`${d.url}/receive_noblock`, { lane: 'b', lease: 60 })
  t.equal(single.status, 200)
  // Another job's token of the same batch, and of the single lease, are refused.
  const wrong = await call(`${d.url}/ack`, { hash: leased[0]!.hash, lease_token: leased[1]!.lease_token })
  t.equal(wrong.body.code, 9, wrong.text)
  const wrong2 = await call(`${d.url}/ack`, { hash: leased[0]!.hash, lease_token: single.body.lease_token })
  t.equal(wrong2.body.code, 9, wrong2.text)
  const acked = await call(`${d.url}/ack`, { leases: leased.slice(0, 300).map((l) => ({ hash: l.hash, lease_token: l.lease_token })) })
  t.equal(acked.status, 200)
  const touched = await call(`${d.url}/touch`, { leases: leased.slice(300, 400).map((l) => ({ hash: l.hash, lease_token: l.lease_token })) })
  t.equal(touched.status, 200)
  const released = await call(`${d.url}/release`, { leases: leased.slice(400, 500).map((l) => ({ hash: l.hash, lease_token: l.lease_token })) })
  t.equal(released.status, 200)
  const again = await call(`${d.url}/ack`, { leases: leased.slice(0, 1).map((l) => ({ hash: l.hash, lease_token: l.lease_token })) })
  t.equal((again.body.results as { code: number }[])[0]!.code, 9, 'acked twice')
  const status = await call(`${d.url}/`)
  t.same((status.body.payload as Record<string, unknown>).leased_jobs, { main: 0, a: 600, b: 1 }, JSON.stringify((status.body.payload as Record<string, unknown>).leased_jobs))
  const metrics = await (await fetch(`${d.url}/metrics`)).text()
  t.match(metrics, /dispenserd_jobs\{lane="a",state="leased"\} 600/)
  const job = await call(`${d.url}/job`, { hash: leased[450]!.hash })
  t.equal(job.body.state, 'queued', job.text)
  const job2 = await call(`${d.url}/job`, { hash: leased[350]!.hash })
  t.equal(job2.body.state, 'leased', job2.text)
  const del = await call(`${d.url}/delete`, { hash: leased[999]!.hash })
  t.equal(del.status, 409, del.text)
  await d.stop('SIGKILL')
  stopped = true
  const d2 = await startDaemon({ args, dataDir: d.dataDir })
  // Leased again and stopped by SIGTERM (a snapshot at shutdown): the leased jobs are queued again.
  t.equal((await call(`${d2.url}/receive_noblock`, { lane: 'a', count: 1000, lease: 60 })).body.count, 1000)
  t.equal((await call(`${d2.url}/receive_noblock`, { lane: 'b', count: 1000, lease: 60 })).body.count, 1000)
  await d2.stop()
  const d3 = await startDaemon({ args, dataDir: d.dataDir })
  t.teardown(async () => {
    await d3.stop()
    removeDir(d.dataDir)
  })
  const st = await call(`${d3.url}/`)
  t.same((st.body.payload as Record<string, unknown>).queued_jobs, { main: 0, a: 2700, b: 3000 }, JSON.stringify((st.body.payload as Record<string, unknown>).queued_jobs))
  t.same((st.body.payload as Record<string, unknown>).leased_jobs, { main: 0, a: 0, b: 0 })
})
