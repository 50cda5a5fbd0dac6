import t from 'tap'
import { FsyncGate } from './helpers/fsync-gate'
import { call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Every answered change survives a kill, and no job is delivered twice outside a lease: producers
 * schedule (one job or batches of five), consumers lease and ack (or release), take for good
 * without a lease, and wait in receive_block (plain and leased), while snapshots compact the journal
 * (a small journal_max_bytes). The daemon is killed with SIGKILL mid-load, in every fsync mode,
 * and in `always` mode also hit by an emulated power loss (the journal cut back to what was
 * fdatasync'd: see helpers/fsync-gate.c). Then it restarts on the same directory, and:
 * - an answered schedule is there, with its job number, unless it was answered as taken or acked;
 * - a job answered to a plain receive, or acked, is not there (it would be delivered twice);
 * - jobs were lost only by takes whose reply was in flight (at most once), and jobs nobody was
 *   answered about were at most the schedules in flight.
 */

const PRODUCERS = 6
/** The kill comes once this many schedules were answered (or after MAX_LOAD_MS on a slow machine). */
const KILL_AFTER = 1200
const MAX_LOAD_MS = 20_000

interface Outcome {
  /** Answered schedules: message → job_num. */
  scheduled: Map<string, number>
  /** Messages answered to a plain receive (gone for good) or whose ack was answered. */
  gone: Set<string>
  /** Messages with an ack or release sent but not answered at the kill: either outcome is right. */
  undecided: Set<string>
  schedulesInFlight: number
  /** Plain receives (noblock or block) sent and not answered at the kill: each may have lost a job. */
  takesInFlight: number
  leasedAcks: number
  blockingTakes: number
}

/** Keeps calling `step` until a request fails after the kill. */
async function until_killed(killed: () => boolean, step: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      await step()
    } catch (err) {
      if (!killed()) throw err
      return
    }
  }
}

async function ok(reply: Promise<{ status: number; text: string; body: Record<string, unknown> }>): Promise<Record<string, unknown>> {
  const r = await reply
  if (r.status !== 200) throw new Error(`answered ${r.status}: ${r.text}`)
  return r.body
}

function load(url: string, killed: () => boolean, out: Outcome): Promise<void> {
  const producer = async (id: number): Promise<void> => {
    let seq = 0
    await until_killed(killed, async () => {
      const batch = seq % 4 === 3 ? Array.from({ length: 5 }, (_, i) => ({ message: `p${id}-${seq}-${i}`, priority: i % 3 })) : undefined
      const count = batch?.length ?? 1
      out.schedulesInFlight += count
      const body = await ok(call(`${url}/schedule`, batch === undefined ? { message: `p${id}-${seq}`, priority: id % 3 } : { jobs: batch }))
      out.schedulesInFlight -= count
      if (batch === undefined) out.scheduled.set(`p${id}-${seq}`, Number(body.job_num))
      else batch.forEach((job, i) => out.scheduled.set(job.message, Number(body.first_job_num) + i))
      seq++
    })
  }
  /** Leases, then acks four jobs in five and releases the fifth. */
  const leaser = async (): Promise<void> => {
    let n = 0
    await until_killed(killed, async () => {
      const got = await ok(call(`${url}/receive_noblock`, { lease: 60 }))
      if (got.code === 2) return
      const message = String(got.message)
      const lease = { hash: got.hash, lease_token: got.lease_token }
      out.undecided.add(message)
      if (++n % 5 === 0) {
        await ok(call(`${url}/release`, lease))
      } else {
        await ok(call(`${url}/ack`, lease))
        out.gone.add(message)
        out.leasedAcks++
      }
      out.undecided.delete(message)
    })
  }
  /** Takes for good: `receive_noblock`, or a parked `receive_block` when `blocking`. */
  const taker = async (blocking: boolean): Promise<void> => {
    await until_killed(killed, async () => {
      out.takesInFlight++
      const got = await ok(call(`${url}/${blocking ? 'receive_block' : 'receive_noblock'}`, blocking ? { timeout: 1 } : {}))
      out.takesInFlight--
      if (got.code === 2) return
      out.gone.add(String(got.message))
      if (blocking) out.blockingTakes++
    })
  }
  /** A parked `receive_block` with a lease, then an ack. */
  const blockingLeaser = async (): Promise<void> => {
    await until_killed(killed, async () => {
      const got = await ok(call(`${url}/receive_block`, { lease: 60, timeout: 1 }))
      if (got.code === 2) return
      const message = String(got.message)
      out.undecided.add(message)
      await ok(call(`${url}/ack`, { hash: got.hash, lease_token: got.lease_token }))
      out.gone.add(message)
      out.undecided.delete(message)
      out.leasedAcks++
    })
  }
  return Promise.all([
    ...Array.from({ length: PRODUCERS }, (_, i) => producer(i)),
    leaser(),
    leaser(),
    taker(false),
    taker(true),
    taker(true),
    blockingLeaser(),
  ]).then(() => undefined)
}

for (const [mode, powerLoss] of [['always', false], ['interval', false], ['never', false], ['always', true]] as const) {
  t.test(`journal_fsync ${mode}: ${powerLoss ? 'a power loss' : 'SIGKILL'} under load loses no answered change and delivers nothing twice`, async (t) => {
    const dir = tempDir()
    const gate = powerLoss ? new FsyncGate() : undefined
    t.teardown(() => {
      removeDir(dir)
      if (gate !== undefined) removeDir(gate.dir)
    })
    const args = ['--persistence', 'journal', '--journal-fsync', mode, '--persist-interval', '0', '--journal-max-bytes', String(64 * 1024)]
    const d = await startDaemon({ dataDir: dir, args, env: gate?.env })
    let killed = false
    const out: Outcome = { scheduled: new Map(), gone: new Set(), undecided: new Set(), schedulesInFlight: 0, takesInFlight: 0, leasedAcks: 0, blockingTakes: 0 }
    const loading = load(d.url, () => killed, out)
    await until(() => out.scheduled.size >= KILL_AFTER, `${KILL_AFTER} answered schedules`, MAX_LOAD_MS)
    // Requests answered until the process is gone count as answered; the rest were in flight.
    d.proc.kill('SIGKILL')
    killed = true
    await d.exited
    await loading
    const cut = gate?.powerLoss(dir) ?? 0
    const compactions = d.logs.filter((l) => l.msg === 'snapshot written').length

    const again = await startDaemon({ dataDir: dir, args })
    t.teardown(() => again.stop())
    const jobs = ((await call(`${again.url}/jobs`)).body.main ?? []) as { job_num: number; message: string; priority: number }[]
    const present = new Map(jobs.map((j) => [j.message, j.job_num]))

    t.equal(present.size, jobs.length, 'no job is there twice')
    let missing = 0
    let wrongNumber = 0
    let deliveredTwice = 0
    for (const [message, jobNum] of out.scheduled) {
      if (out.undecided.has(message)) continue
      if (out.gone.has(message)) {
        if (present.has(message)) deliveredTwice++
      } else if (!present.has(message)) missing++
      else if (present.get(message) !== jobNum) wrongNumber++
    }
    t.equal(deliveredTwice, 0, 'no job answered to a plain receive or acked is back')
    t.ok(missing <= out.takesInFlight, `jobs missing (${missing}) are at most the plain takes in flight at the kill (${out.takesInFlight})`)
    t.equal(wrongNumber, 0, 'every job has the number it was answered with')
    const unknown = jobs.filter((j) => !out.scheduled.has(j.message)).length
    t.ok(unknown <= out.schedulesInFlight, `jobs nobody was answered about (${unknown}) are at most the schedules in flight (${out.schedulesInFlight})`)
    const inOrder = jobs.every((j, i) => i === 0 || jobs[i - 1]!.priority < j.priority || (jobs[i - 1]!.priority === j.priority && jobs[i - 1]!.job_num < j.job_num))
    t.ok(inOrder, 'in serving order: priority, then job number')
    t.ok(out.leasedAcks > 0 && out.blockingTakes > 0, `leases were acked (${out.leasedAcks}) and parked receivers served (${out.blockingTakes}) during the load`)
    t.ok(compactions > 0, 'snapshots compacted the journal during the load')
    t.comment(
      `${mode}${powerLoss ? ` + power loss (${cut} unsynced journal bytes cut)` : ''}: ${out.scheduled.size} schedules, ${out.gone.size} takes and acks answered before the kill, ` +
        `${compactions} compactions, ${jobs.length} jobs after restart; missing ${missing} (takes in flight ${out.takesInFlight}), twice ${deliveredTwice}`,
    )
  })
}
