import t from 'tap'
import { call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * The proof the journal issue asks for: concurrent producers schedule, consumers lease and ack,
 * the daemon is killed with SIGKILL mid-load (with compactions happening: a small journal_max_bytes),
 * restarted on the same data directory, and every answered change must be there exactly once:
 * each answered schedule present unless its job's ack was answered, nothing twice, in serving order.
 */

const PRODUCERS = 8
const CONSUMERS = 2
/** The kill comes once this many schedules were answered (or after MAX_LOAD_MS on a slow machine). */
const KILL_AFTER = 1200
const MAX_LOAD_MS = 15_000

interface Outcome {
  /** Answered schedules: message → job_num. */
  scheduled: Map<string, number>
  /** Messages whose ack was answered. */
  acked: Set<string>
  /** Messages whose ack was sent but not answered when the daemon died. */
  ackInFlight: Set<string>
  schedulesInFlight: number
}

/** Runs producers and consumers until a request fails after `killed()` turns true. */
async function load(url: string, killed: () => boolean, out: Outcome): Promise<void> {
  const producer = async (id: number): Promise<void> => {
    for (let seq = 0; ; seq++) {
      const message = `p${id}-${seq}`
      try {
        const r = await call(`${url}/schedule`, { message, priority: id % 3 })
        if (r.status !== 200) throw new Error(`schedule answered ${r.status}: ${r.text}`)
        out.scheduled.set(message, Number(r.body.job_num))
      } catch (err) {
        if (!killed()) throw err
        out.schedulesInFlight++
        return
      }
    }
  }
  const consumer = async (): Promise<void> => {
    for (;;) {
      let message: string | undefined
      try {
        const r = await call(`${url}/receive_noblock`, { lease: 60 })
        if (r.body.code === 2) continue
        message = String(r.body.message)
        out.ackInFlight.add(message)
        const acked = await call(`${url}/ack`, { hash: r.body.hash, lease_token: r.body.lease_token })
        if (acked.status !== 200) throw new Error(`ack answered ${acked.status}: ${acked.text}`)
        out.ackInFlight.delete(message)
        out.acked.add(message)
      } catch (err) {
        if (!killed()) throw err
        return
      }
    }
  }
  await Promise.all([...Array.from({ length: PRODUCERS }, (_, i) => producer(i)), ...Array.from({ length: CONSUMERS }, consumer)])
}

for (const mode of ['always', 'interval', 'never'] as const) {
  t.test(`journal_fsync ${mode}: SIGKILL under load loses no answered change`, async (t) => {
    const dir = tempDir()
    t.teardown(() => removeDir(dir))
    const args = ['--persistence', 'journal', '--journal-fsync', mode, '--persist-interval', '0', '--journal-max-bytes', String(64 * 1024)]
    const d = await startDaemon({ dataDir: dir, args })
    let killed = false
    const outcome: Outcome = { scheduled: new Map(), acked: new Set(), ackInFlight: new Set(), schedulesInFlight: 0 }
    const loading = load(d.url, () => killed, outcome)
    await until(() => outcome.scheduled.size >= KILL_AFTER, `${KILL_AFTER} answered schedules`, MAX_LOAD_MS)
    // Requests answered until the process is gone count as answered; the rest were in flight.
    d.proc.kill('SIGKILL')
    killed = true
    await d.exited
    await loading
    const compactions = d.logs.filter((l) => l.msg === 'snapshot written').length

    const again = await startDaemon({ dataDir: dir, args })
    t.teardown(() => again.stop())
    const jobs = ((await call(`${again.url}/jobs`)).body.main ?? []) as { job_num: number; message: string; priority: number }[]
    const present = new Map(jobs.map((j) => [j.message, j.job_num]))

    t.equal(present.size, jobs.length, 'no job is there twice')
    let missing = 0
    let wrongNumber = 0
    let ackedButBack = 0
    for (const [message, jobNum] of outcome.scheduled) {
      if (outcome.acked.has(message)) {
        if (present.has(message)) ackedButBack++
      } else if (!outcome.ackInFlight.has(message)) {
        if (!present.has(message)) missing++
        else if (present.get(message) !== jobNum) wrongNumber++
      }
    }
    t.equal(missing, 0, 'every answered schedule whose job was not acked is there')
    t.equal(wrongNumber, 0, 'with the job number it was answered with')
    t.equal(ackedButBack, 0, 'no answered ack is undone')
    const unknown = jobs.filter((j) => !outcome.scheduled.has(j.message)).length
    t.ok(unknown <= outcome.schedulesInFlight, `jobs not answered before the kill (${unknown}) were at most those in flight (${outcome.schedulesInFlight})`)
    const inOrder = jobs.every((j, i) => i === 0 || jobs[i - 1]!.priority < j.priority || (jobs[i - 1]!.priority === j.priority && jobs[i - 1]!.job_num < j.job_num))
    t.ok(inOrder, 'in serving order: priority, then job number')
    t.ok(outcome.acked.size > 0, 'consumers acked jobs during the load')
    t.ok(compactions > 0, 'snapshots compacted the journal during the load')
    t.comment(
      `${mode}: ${outcome.scheduled.size} schedules and ${outcome.acked.size} acks answered before the kill, ` +
        `${compactions} compactions during the load, ${jobs.length} jobs after restart (expected ${outcome.scheduled.size - outcome.acked.size} ± ` +
        `${outcome.ackInFlight.size + outcome.schedulesInFlight} in flight), lost ${missing}`,
    )
  })
}
