/**
 * The bound: the best a bare uWebSockets.js program does on the work dispenserd does per request,
 * measured beside the ceiling (bench/ceiling.ts) and the daemon in the same run. Where the ceiling
 * only reads, parses and answers a fixed reply, this also does a queue's essential work, written
 * plainly and with nothing else (no routing table, no metrics, no logs, no limits, no leases):
 *
 * - `/schedule` (one job, or `{"jobs": [...]}` as the benchmarks fill queues with): parse, check
 *   message, lane and priority as dispenserd does, queue a job object in serving order, answer
 *   with its number and a 40-digit hash (dispenserd's hash scheme).
 * - `/receive_noblock`: take the default lane's first job (lowest priority number, then oldest) and answer
 *   with it as dispenserd does (`{"status":"ok","code":0,"job_num":…,"hash":…,"timestamp":…,
 *   "lane":…,"priority":…,"message":…}`, written as bytes into a reused buffer with dispenserd's
 *   writer), or "empty queue".
 * - `GET /`: `{"payload":{"queued_jobs":{"main":N}}}`, which the drain workload reads.
 *
 * The benchmarks' jobs all go to the default lane; other lanes are kept apart but never received from.
 *
 *   node dist/bench/bound.js PORT
 */
import * as uWS from 'uWebSockets.js'
import { ByteWriter, jsonStringBound } from '../src/queue/bytes'
import { HashScheme } from '../src/queue/hash'
import { listen, withBody } from './lib/bare'
import { DEFAULT_LANE, DEFAULT_PRIORITY, MAX_PRIORITY } from '../src/queue/job'

interface BoundJob {
  jobNum: number
  /** Seconds since the epoch. */
  created: number
  lane: string
  priority: number
  message: string
}

/**
 * Jobs in serving order (priority, then job number), laid out as dispenserd lays them out: a FIFO
 * per priority and a binary heap of the priorities that have jobs. (A binary heap of the jobs
 * themselves, tried first, drains a million jobs slower than dispenserd does: each pop misses the
 * cache on each of its twenty levels.)
 */
class ReadyJobs {
  private readonly fifos = new Map<number, { jobs: BoundJob[]; head: number }>()
  /** The priorities that have jobs, as a binary min-heap. */
  private readonly priorities: number[] = []
  size = 0

  push(job: BoundJob): void {
    let fifo = this.fifos.get(job.priority)
    if (fifo === undefined) {
      this.fifos.set(job.priority, (fifo = { jobs: [], head: 0 }))
      this.pushPriority(job.priority)
    }
    fifo.jobs.push(job)
    this.size++
  }

  pop(): BoundJob | undefined {
    const priority = this.priorities[0]
    if (priority === undefined) return undefined
    const fifo = this.fifos.get(priority)!
    const job = fifo.jobs[fifo.head]!
    fifo.jobs[fifo.head++] = undefined as unknown as BoundJob // let it go
    this.size--
    if (fifo.head === fifo.jobs.length) {
      this.fifos.delete(priority)
      this.popPriority()
    } else if (fifo.head > 4096 && fifo.head * 2 > fifo.jobs.length) {
      fifo.jobs = fifo.jobs.slice(fifo.head)
      fifo.head = 0
    }
    return job
  }

  private pushPriority(priority: number): void {
    const heap = this.priorities
    let at = heap.push(priority) - 1
    while (at > 0 && heap[(at - 1) >> 1]! > priority) {
      heap[at] = heap[(at - 1) >> 1]!
      at = (at - 1) >> 1
    }
    heap[at] = priority
  }

  private popPriority(): void {
    const heap = this.priorities
    const last = heap.pop()!
    if (heap.length === 0) return
    let at = 0
    for (;;) {
      const left = 2 * at + 1
      if (left >= heap.length) break
      const child = left + 1 < heap.length && heap[left + 1]! < heap[left]! ? left + 1 : left
      if (heap[child]! >= last) break
      heap[at] = heap[child]!
      at = child
    }
    heap[at] = last
  }
}

class Invalid extends Error {}

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/

/** The checks dispenserd makes of a plain job: a string message, a lane name, an integer priority. */
function jobOf(fields: Record<string, unknown>): BoundJob {
  const { message, lane, priority } = fields
  if (typeof message !== 'string') throw new Invalid('"message" must be a string')
  let laneName = DEFAULT_LANE
  if (lane !== undefined && lane !== null && lane !== '') {
    if (typeof lane !== 'string' || lane.length > 128 || CONTROL_CHARACTER.test(lane)) throw new Invalid('"lane" must be a string of at most 128 characters')
    laneName = lane
  }
  let prio = DEFAULT_PRIORITY
  if (priority !== undefined && priority !== null) {
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) throw new Invalid('"priority" must be an integer')
    prio = priority
  }
  return { jobNum: ++lastJobNum, created: Math.floor(Date.now() / 1000), lane: laneName, priority: prio, message }
}

/** Each lane's jobs. A receive here always takes from the default lane (the drain workload's). */
const lanes = new Map<string, ReadyJobs>()
function laneOf(name: string): ReadyJobs {
  let lane = lanes.get(name)
  if (lane === undefined) lanes.set(name, (lane = new ReadyJobs()))
  return lane
}
const hashes = new HashScheme()
let lastJobNum = 0

let cachedSecond = NaN
let cachedTimestamp = ''
function timestamp(seconds: number): string {
  if (seconds !== cachedSecond) {
    cachedSecond = seconds
    cachedTimestamp = new Date(seconds * 1000).toISOString().slice(0, 19) + 'Z'
  }
  return cachedTimestamp
}

const EMPTY_QUEUE = '{"status":"ok","code":2,"message":"empty queue"}'

function schedule(body: Buffer): string {
  const fields = JSON.parse(body.toString('utf8')) as Record<string, unknown>
  if (!Array.isArray(fields.jobs)) {
    const job = jobOf(fields)
    laneOf(job.lane).push(job)
    return `{"status":"ok","code":0,"job_num":${job.jobNum},"hash":"${hashes.hashOf(job.jobNum)}"}`
  }
  const jobs = (fields.jobs as Record<string, unknown>[]).map(jobOf)
  for (const job of jobs) laneOf(job.lane).push(job)
  return `{"status":"ok","code":0,"count":${jobs.length},"first_job_num":${jobs[0]!.jobNum},"last_job_num":${jobs[jobs.length - 1]!.jobNum}}`
}

/** Reused for every reply to a receive: uWS copies what `end` is given before it returns. */
const out = new ByteWriter(64 * 1024)

/** The reply is written as bytes into one reused buffer, as dispenserd writes it (made as a string it was slower than the daemon). */
function receive(): string | Uint8Array {
  const job = lanes.get(DEFAULT_LANE)?.pop()
  if (job === undefined) return EMPTY_QUEUE
  out.pos = 0
  out.reserve(jsonStringBound(job.message) + jsonStringBound(job.lane) + 200)
  out.ascii('{"status":"ok","code":0,"job_num":')
  out.uint(job.jobNum)
  out.ascii(',"hash":"')
  hashes.writeHash(job.jobNum, out)
  out.ascii(`","timestamp":"${timestamp(job.created)}","lane":`)
  out.jsonString(job.lane)
  out.ascii(',"priority":')
  out.uint(job.priority)
  out.ascii(',"message":')
  out.jsonString(job.message)
  out.ascii('}')
  return out.buf.subarray(0, out.pos)
}

const app = uWS
  .App()
  .any('/schedule', withBody(schedule))
  .any('/receive_noblock', withBody(receive))
  .get('/', (res) => {
    res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(JSON.stringify({ status: 'ok', code: 0, payload: { queued_jobs: Object.fromEntries([...lanes].map(([name, lane]) => [name, lane.size])) } }))
  })
  .any('/*', (res) => {
    res.writeStatus('404 Not Found').end('{"status":"error","code":3,"message":"not found"}')
  })

listen(app, 'bound', Number(process.argv[2] ?? 0))
