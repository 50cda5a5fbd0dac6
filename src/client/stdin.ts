import { createInterface } from 'node:readline'
import type { DispenserdClient } from './client'
import type { NewJob } from './types'

/**
 * `dispenserd schedule` with jobs on standard input: one message per line (empty lines skipped),
 * sent as batches, each queued whole or not at all by the daemon.
 */

/** A batch stays well under the daemon's default max_body_bytes (1 MiB). */
const MAX_BATCH_BYTES = 512 * 1024

export async function* readJobLines(input: NodeJS.ReadableStream): AsyncGenerator<string> {
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line !== '') yield line
  }
}

export interface Totals {
  count: number
  first: number | undefined
  last: number | undefined
}

/**
 * Sends the lines as jobs like `template`, `batchSize` at a time (fewer when their messages are
 * large). A refused batch throws, saying how many jobs were queued before it.
 */
export async function scheduleLines(
  client: DispenserdClient,
  lines: AsyncIterable<string>,
  template: NewJob,
  batchSize: number,
  onBatch: (reply: object) => void,
): Promise<Totals> {
  const totals: Totals = { count: 0, first: undefined, last: undefined }
  let batch: NewJob[] = []
  let batchBytes = 0
  const send = async (): Promise<void> => {
    if (batch.length === 0) return
    try {
      const reply = await client.scheduleBatch(batch)
      onBatch(reply)
      totals.count += reply.count
      totals.first ??= reply.first_job_num
      totals.last = reply.last_job_num
    } catch (err) {
      if (totals.count > 0) (err as Error).message += ` (the ${totals.count} jobs before this batch were queued, job numbers ${totals.first}-${totals.last})`
      throw err
    }
    batch = []
    batchBytes = 0
  }
  for await (const message of lines) {
    const bytes = Buffer.byteLength(JSON.stringify(message)) + 64
    if (batch.length >= batchSize || (batch.length > 0 && batchBytes + bytes > MAX_BATCH_BYTES)) await send()
    batch.push({ ...template, message })
    batchBytes += bytes
  }
  await send()
  return totals
}
