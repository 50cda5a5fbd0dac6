import t, { type Test } from 'tap'
import { FsyncGate } from './helpers/fsync-gate'
import { type Reply, type Running, call, removeDir, startDaemon, until } from './helpers/daemon'

/**
 * Hand-overs and leases under a paused fsync (a real daemon with the journal in `always` mode, its
 * fdatasyncs held at a gate the test opens one at a time), then a power loss emulated by cutting
 * the journal back to what was synced.
 */

const ALWAYS = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']

async function daemon(t: Test, gate?: FsyncGate, dataDir?: string): Promise<Running> {
  const d = await startDaemon({ dataDir, args: ALWAYS, env: gate?.env })
  t.teardown(() => d.stop('SIGKILL'))
  return d
}

async function payload(d: Running): Promise<Record<string, Record<string, number>>> {
  return (await call(`${d.url}/`)).body.payload as Record<string, Record<string, number>>
}

/** Resolves to "answered" if `reply` settles within `ms`, else "waiting". */
function within(reply: Promise<unknown>, ms: number): Promise<'answered' | 'waiting'> {
  return Promise.race([reply.then(() => 'answered' as const, () => 'answered' as const), new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), ms))])
}

t.test('a receiver handed a job in a later batch is answered only once its own take is synced', async (t) => {
  const gate = new FsyncGate()
  const d = await daemon(t, gate)
  t.teardown(() => {
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  t.equal((await call(`${d.url}/schedule`, { lane: 'later', message: 'two' })).status, 200, 'job "two" is queued and synced')
  const first = call(`${d.url}/receive_block`, { lane: 'now' })
  await until(async () => (await payload(d)).idle_workers!.now === 1, 'a receiver parked on lane "now"')
  gate.close()
  const synced = gate.started().length
  // Batch 1: "one" is scheduled and handed to the parked receiver. Its fsync is held.
  const scheduled = call(`${d.url}/schedule`, { lane: 'now', message: 'one' })
  await gate.waitStarted(synced + 1, 'the fsync of batch 1')
  // Batch 2: a second receiver takes "two" at once; no fsync after the first may end.
  const second = call(`${d.url}/receive_block`, { lane: 'later' })
  await until(async () => (await payload(d)).queued_jobs!.later === 0, 'the second receiver to take "two"')
  gate.allow(synced + 1)
  t.equal((await first).body.message, 'one', 'the first receiver is answered once batch 1 is synced')
  t.equal((await scheduled).status, 200)
  t.equal(await within(second, 300), 'waiting', 'the second is not answered while its take is not synced')

  // The machine loses power now: what was not synced is gone.
  await d.stop('SIGKILL')
  gate.powerLoss(d.dataDir)
  const again = await daemon(t, undefined, d.dataDir)
  const jobs = (await call(`${again.url}/jobs`)).body as Record<string, { message: string }[]>
  t.same(jobs.now ?? [], [], '"one" was handed over and stays gone')
  t.same(jobs.later?.map((j) => j.message), ['two'], '"two" was never answered to anyone, so it is still queued: delivered at most once')
})

/**
 * A leased hand-over whose reply waits at the gate while its lease runs out; its client then
 * leaves. With `releaseTo`, another consumer leases the job meanwhile.
 */
async function leaseOutlivesItsReply(t: Test, secondConsumer: boolean): Promise<{ d: Running; second: Reply | undefined }> {
  const gate = new FsyncGate()
  const d = await daemon(t, gate)
  t.teardown(() => {
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  await call(`${d.url}/schedule`, { message: 'x' })
  gate.close()
  const synced = gate.started().length
  const leaving = new AbortController()
  const first = call(`${d.url}/receive_block`, { lease: 0.3 }, { signal: leaving.signal }).catch(() => undefined)
  await gate.waitStarted(synced + 1, 'the fsync of the lease')
  leaving.abort() // the client leaves while its reply waits for the fsync
  await first
  await until(async () => (await payload(d)).queued_jobs!.main === 1, 'the lease to run out and put the job back')
  const second = secondConsumer ? call(`${d.url}/receive_noblock`, { lease: 30 }) : undefined
  if (secondConsumer) await until(async () => (await payload(d)).leased_jobs!.main === 1, 'the job leased to the second consumer')
  gate.open()
  return { d, second: await second }
}

/** The log line of a reply that could not be sent, whatever became of its job. */
const failedReply = (line: { msg?: string; reason?: unknown }): boolean => line.reason === 'receiver disconnected' && /^job (not )?put back/.test(line.msg ?? '')

t.test('a failed hand-over does not return a job whose lease already ran out (it would be queued twice)', async (t) => {
  const { d } = await leaseOutlivesItsReply(t, false)
  await until(() => d.logs.some(failedReply), 'the failed reply')
  t.same(((await call(`${d.url}/jobs`)).body.main as { message: string }[]).map((j) => j.message), ['x'], 'queued once')
  t.equal((await payload(d)).server!.queued_jobs_total, 1)
})

t.test('a failed hand-over does not cancel the lease of the consumer who has the job now', async (t) => {
  const { d, second } = await leaseOutlivesItsReply(t, true)
  t.equal(second!.body.message, 'x')
  await until(() => d.logs.some(failedReply), 'the failed reply')
  t.same({ leased: (await payload(d)).leased_jobs!.main, queued: (await payload(d)).queued_jobs!.main }, { leased: 1, queued: 0 }, 'still leased to the second consumer')
  const acked = await call(`${d.url}/ack`, { hash: second!.body.hash, lease_token: second!.body.lease_token })
  t.equal(acked.status, 200, 'whose ack works')
})

t.test('only the current holder of a lease can ack, release or touch it', async (t) => {
  const d = await startDaemon()
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  await call(`${d.url}/schedule`, { message: 'x' })
  const old = await call(`${d.url}/receive_noblock`, { lease: 0.2 })
  t.type(old.body.lease_token, 'string', 'a leased receive answers a lease_token')
  await until(async () => (await payload(d)).queued_jobs!.main === 1, 'the first lease to run out')
  const current = await call(`${d.url}/receive_noblock`, { lease: 30 })
  t.equal(current.body.hash, old.body.hash, 'the same job, leased again')
  t.not(current.body.lease_token, old.body.lease_token, 'under a new token')
  for (const [path, extra] of [['/touch', { lease: 60 }], ['/release', {}], ['/ack', {}]] as const) {
    const late = await call(`${d.url}${path}`, { hash: old.body.hash, lease_token: old.body.lease_token, ...extra })
    t.same([late.status, late.body.code], [404, 9], `${path} from the holder whose lease expired answers code 9`)
    t.match(late.body.message, /lease ended/)
  }
  t.equal((await payload(d)).leased_jobs!.main, 1, 'the current lease is untouched')
  const noToken = await call(`${d.url}/ack`, { hash: current.body.hash })
  t.same([noToken.status, noToken.body.code], [400, 1])
  t.match(noToken.body.message, /missing lease_token/)
  const acked = await call(`${d.url}/ack`, { hash: current.body.hash, lease_token: current.body.lease_token })
  t.same(acked.body, { status: 'ok', code: 0, job_num: 1, hash: current.body.hash })
})
