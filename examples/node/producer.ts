/**
 * Queues each argument as a job: node dist/examples/node/producer.js [--lane L] MESSAGE...
 * The daemon is $DISPENSERD_URL (default http://127.0.0.1:8282), its token $DISPENSERD_TOKEN.
 * The client is the package's own typed module, `dispenserd/client`.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { DispenserdClient } from 'dispenserd/client'

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { lane: { type: 'string' }, priority: { type: 'string' } }, allowPositionals: true })
  const client = new DispenserdClient({ url: process.env.DISPENSERD_URL, token: process.env.DISPENSERD_TOKEN, ca: process.env.DISPENSERD_CA ? readFileSync(process.env.DISPENSERD_CA) : undefined })
  for (const message of positionals) {
    const job = await client.schedule({ message, lane: values.lane, priority: values.priority === undefined ? undefined : Number(values.priority) })
    console.log(`queued job ${job.job_num}: ${message}`)
  }
}

main().catch((err: unknown) => {
  console.error(`producer: ${(err as Error).message}`)
  process.exit(1)
})
