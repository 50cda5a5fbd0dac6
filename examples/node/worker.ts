/**
 * A consumer loop: node dist/examples/node/worker.js [--lane L] [--lease S] [--max-jobs N]
 *
 * Takes jobs under a lease, works on each, and acks it when the work succeeded or releases it (to
 * be tried again after --retry-delay seconds) when it failed. A job whose worker dies is not lost:
 * its lease runs out and the daemon hands it to another worker. While the daemon cannot be reached
 * (not started yet, restarting) it waits and tries again, up to 5 s apart.
 *
 * The "work" here is a stand-in: a message starting with "fail-once" fails the first time this
 * worker sees it. Replace work() with yours.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConnectionError, DispenserdClient, DispenserdError, type LeasedJob } from 'dispenserd/client'

const { values } = parseArgs({
  options: { lane: { type: 'string' }, lease: { type: 'string', default: '60' }, 'retry-delay': { type: 'string', default: '0' }, 'max-jobs': { type: 'string', default: '0' } },
})
const lease = Number(values.lease)
const retryDelay = Number(values['retry-delay'])
const maxJobs = Number(values['max-jobs'])
const client = new DispenserdClient({ url: process.env.DISPENSERD_URL, token: process.env.DISPENSERD_TOKEN, ca: process.env.DISPENSERD_CA ? readFileSync(process.env.DISPENSERD_CA) : undefined })

const seen = new Set<string>()
async function work(job: LeasedJob): Promise<void> {
  if (job.message.startsWith('fail-once') && !seen.has(job.message)) {
    seen.add(job.message)
    throw new Error('failed on the first try')
  }
}

/** Works on one leased job; acks it, or releases it when the work failed. Resolves to whether it was acked. */
async function handle(job: LeasedJob): Promise<boolean> {
  try {
    await work(job)
  } catch (err) {
    await client.release(job.hash, job.lease_token, retryDelay)
    console.log(`released job ${job.job_num} (${job.message}): ${(err as Error).message}`)
    return false
  }
  try {
    await client.ack(job.hash, job.lease_token)
  } catch (err) {
    // Code 9: the lease ran out before the ack; the job went back and may run again.
    if (!(err instanceof DispenserdError)) throw err
    console.log(`could not ack job ${job.job_num}: ${err.message}`)
    return false
  }
  console.log(`done job ${job.job_num} (${job.message})`)
  return true
}

async function main(): Promise<void> {
  let stopping = false
  const stop = (): void => {
    stopping = true
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  let acked = 0
  let pause = 200
  while (!stopping && (maxJobs === 0 || acked < maxJobs)) {
    try {
      const job = await client.receive({ lane: values.lane, lease, block: true, timeout: 5 })
      if (job !== undefined && (await handle(job))) acked++
      pause = 200
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err
      // Not started yet, restarting, or gone for a while: a job leased before the break comes
      // back to the lane when its lease runs out.
      console.log(`${err.message}; trying again in ${pause} ms`)
      await sleep(pause)
      pause = Math.min(pause * 2, 5000)
    }
  }
}

main().catch((err: unknown) => {
  console.error(`worker: ${(err as Error).message}`)
  process.exit(1)
})
