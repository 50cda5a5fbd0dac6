/**
 * Heap bytes per queued job, measured in-process with forced garbage collection (run with
 * `node --expose-gc`): dispenserd's Queue holding N jobs with 64-byte messages parsed from JSON as
 * the HTTP path parses them, and for reference the same jobs held naively (one plain object per
 * job, with the hash and timestamp as strings). Prints one JSON line.
 *
 *   node --expose-gc dist/bench/memory-probe.js 1000000
 */
import { createHash } from 'node:crypto'
import { Queue } from '../src/queue/queue'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const count = Number(process.argv[2] ?? 1_000_000)

function body(i: number): string {
  return `{"message":"${String(i).padStart(64, '0')}","priority":${i % 100},"lane":"main"}`
}

function heapAfterGc(): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

function measure(fill: (i: number, parsed: { message: string; priority: number; lane: string }) => void): number {
  const before = heapAfterGc()
  for (let i = 0; i < count; i++) fill(i, JSON.parse(Buffer.from(body(i)).toString('utf8')) as { message: string; priority: number; lane: string })
  return (heapAfterGc() - before) / count
}

const queue = new Queue()
const ours = measure((_, p) => queue.schedule(p))
const naiveJobs: object[] = []
const naive = measure((i, p) =>
  naiveJobs.push({
    job_num: i + 1,
    hash: createHash('sha1').update(String(i)).digest('hex'),
    timestamp: new Date().toISOString(),
    lane: p.lane,
    priority: p.priority,
    message: p.message,
  }),
)
process.stdout.write(`${JSON.stringify({ count, ours, naive, queued: queue.totalQueued, naiveHeld: naiveJobs.length })}\n`)
