import t from 'tap'
import type { ChangeLog } from '../src/queue/changes'
import type { Held } from '../src/queue/held'
import { Queue } from '../src/queue/queue'

/**
 * Many lanes with batch leases out at once: their jobs' numbers interleave, so every lane's run
 * spans the same numbers. Acking one of them must not cost a look through every lane's run (an
 * index by job number did: 27 µs an ack at 1,000 lanes against 2 µs for leases taken one by one).
 */

const noop = (): undefined => undefined
const changes: ChangeLog = {
  scheduled: noop, taken: noop, leased: noop, acked: noop, returned: noop, buried: noop, deleted: noop,
  lanePaused: noop, finished: noop, uniqueHeld: noop, cronChanged: noop,
}

/** Milliseconds to ack every job of 1,000 lanes leased in batches (or one by one), in job-number order. */
function ackAll(batch: boolean): number {
  const q = new Queue({ clock: Date.now, changes, leaseTokenPrefix: 'p-' })
  const lanes = 1000
  const inputs = []
  for (let i = 0; i < 200; i++) for (let l = 0; l < lanes; l++) inputs.push({ message: 'x', lane: `l${l}`, priority: 0 })
  q.scheduleMany(inputs)
  const leases: Held[] = []
  for (let l = 0; l < lanes; l++) {
    if (batch) leases.push(...q.receiveLeasedMany(`l${l}`, 600_000, 1000))
    else for (let lease = q.receiveLeased(`l${l}`, 600_000); lease !== undefined; lease = q.receiveLeased(`l${l}`, 600_000)) leases.push(lease)
  }
  leases.sort((a, b) => a.job.jobNum - b.job.jobNum)
  const start = performance.now()
  for (const lease of leases) q.ack(lease.job.hash, lease.token)
  const ms = performance.now() - start
  if (q.leasedJobs !== 0) throw new Error(`${q.leasedJobs} leases left`)
  return ms
}

t.test('acking batch-leased jobs of 1,000 lanes costs about what acking single leases does', (t) => {
  // Best of three of each, interleaved, so a busy moment on the machine weighs on neither alone.
  const batch: number[] = []
  const single: number[] = []
  for (let round = 0; round < 3; round++) {
    batch.push(ackAll(true))
    single.push(ackAll(false))
  }
  const ratio = Math.min(...batch) / Math.min(...single)
  t.comment(`batch ${Math.min(...batch).toFixed(0)} ms, single ${Math.min(...single).toFixed(0)} ms for 200,000 acks`)
  t.ok(ratio < 3, `batch leases' acks take ${ratio.toFixed(1)}x single leases' (at most 3x)`)
  t.end()
})
