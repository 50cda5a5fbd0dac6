import { jobMembersJson } from './job'
import type { LaneSnapshot, Queue } from './queue'

/**
 * Every lane with its jobs in serving order, as JSON: the body of `GET /jobs` and the content of
 * `queue.json`, which share the original dispenserd's shape. One job per line keeps it readable
 * (and lets a large snapshot be read back line by line) without the cost of indenting.
 *
 * Yields pieces of about `jobsPerPiece` jobs, so a writer can give the event loop a turn between them.
 */
export function* encodeJobsByLane(lanes: LaneSnapshot[], jobsPerPiece = 5000): Generator<string> {
  let piece = '{\n'
  let inPiece = 0
  for (let l = 0; l < lanes.length; l++) {
    const { lane, jobs, count } = lanes[l]!
    piece += `${JSON.stringify(lane)}: [`
    let first = true
    for (const job of jobs) {
      piece += `${first ? '\n' : ',\n'}{${jobMembersJson(job)}}`
      first = false
      if (++inPiece >= jobsPerPiece) {
        yield piece
        piece = ''
        inPiece = 0
      }
    }
    piece += `${count > 0 ? '\n]' : ']'}${l < lanes.length - 1 ? ',\n' : '\n'}`
  }
  yield `${piece}}\n`
}

/** The whole listing as one string (for `GET /jobs`). */
export function jobsByLaneText(queue: Queue): string {
  return [...encodeJobsByLane(queue.snapshot())].join('')
}
