import { ByteWriter } from './bytes'
import { type Job, writeFinishedMembers, writeJobMembers, writeReportMembers } from './job'
import type { LaneSnapshot } from './queue'

/**
 * Every lane with its jobs in serving order, as JSON: the body of `GET /jobs` and the content of
 * `queue.json`, which share the original dispenserd's shape. One job per line keeps it readable
 * (and lets a large snapshot be read back line by line) without the cost of indenting.
 *
 * Yields pieces of about `pieceBytes`, so a writer can give the event loop a turn between them.
 * With `reusePieces`, every piece is written in the same memory: a piece is valid only until the
 * next is asked for (a client reading a listing for minutes then costs one buffer, not garbage).
 */
export function* encodeJobsByLane(lanes: LaneSnapshot[], { pieceBytes = 256 * 1024, writeMembers = writeJobMembers, reusePieces = false } = {}): Generator<Buffer> {
  const out = new ByteWriter(pieceBytes)
  out.ascii('{\n')
  for (let l = 0; l < lanes.length; l++) {
    const { lane, parts, count } = lanes[l]!
    out.reserve(lane.length * 6 + 16)
    out.jsonString(lane)
    out.ascii(': [')
    let first = true
    for (const part of parts) {
      for (const job of part) {
        out.reserve(4)
        out.ascii(first ? '\n{' : ',\n{')
        writeMembers(job, out)
        out.ascii('}')
        first = false
        if (out.full) yield reusePieces ? out.rewind() : out.take()
      }
    }
    out.reserve(4)
    out.ascii(count > 0 ? '\n]' : ']')
    out.ascii(l < lanes.length - 1 ? ',\n' : '\n')
  }
  out.reserve(2)
  out.ascii('}\n')
  yield out.take()
}

/** A dead job's line: its fields, then its last run's report. */
function writeDeadMembers(job: Job, out: ByteWriter): void {
  writeJobMembers(job, out)
  writeReportMembers(job.report!, out)
}

/** A retried job's line in `dead.json`: its fields, marked as back in its lane. */
function writeRetriedMembers(job: Job, out: ByteWriter): void {
  writeJobMembers(job, out)
  out.reserve(16)
  out.ascii(',"retried":true')
}

/**
 * `dead.json`, in the same layout: every dead job, by lane, and after them the jobs `retried` out
 * of the previous dead.json (see SnapshotStore.load for why they are carried).
 */
export function encodeDeadJobs(dead: Map<string, Job[]>, retried: Job[] = [], finished: { job: Job; until: number }[] = []): Generator<Buffer> {
  const byLane = new Map([...dead].map(([lane, jobs]) => [lane, [jobs, [], []]]))
  const partsOf = (lane: string): Job[][] => byLane.get(lane) ?? byLane.set(lane, [[], [], []]).get(lane)!
  for (const job of retried) partsOf(job.lane)[1]!.push(job)
  const keptUntil = new Map<Job, number>()
  for (const { job, until } of finished) {
    partsOf(job.lane)[2]!.push(job)
    keptUntil.set(job, until)
  }
  const retriedJobs = new Set(retried)
  const writeMembers = (job: Job, out: ByteWriter): void => {
    const until = keptUntil.get(job)
    if (until !== undefined) writeFinishedMembers(job, until, out)
    else if (retriedJobs.has(job)) writeRetriedMembers(job, out)
    else writeDeadMembers(job, out)
  }
  const lanes = [...byLane].map(([lane, parts]) => ({ lane, count: parts.reduce((n, part) => n + part.length, 0), parts }))
  return encodeJobsByLane(lanes, { writeMembers })
}
