import { statSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import type { Logger } from '../log'
import type { RestoredJob } from '../queue/queue'
import { journalFile, journalGenerations } from './journal'
import { readLines } from './lines'
import type { RunReport } from '../queue/job'
import { decodeJob, decodeReport } from './snapshot'

export interface DeadJob {
  dead: RestoredJob
  report: RunReport
}

/**
 * What the journal says about each job it mentions: its last record decides. `schedule` and
 * `return` (which carry the whole job) and `lease` mean the job is there; `take` and `ack` mean it
 * is gone. Jobs the journal does not mention are as the snapshot has them.
 *
 * Because only the last record counts, replaying records the snapshot already reflects does no
 * harm: a crash at any point of a compaction (snapshot written, old generations not yet deleted)
 * restores every job exactly once.
 */
export class JournalState {
  /**
   * job_num → the job (queued), null when it is gone, 'present' when it is there with its content
   * in the snapshot, or a dead job with its report.
   */
  readonly jobs = new Map<number, RestoredJob | null | 'present' | DeadJob>()
  records = 0
  highestJobNum = 0

  apply(op: string, fields: Record<string, unknown>, where: string): void {
    const jobNum = fields.job_num
    if (typeof jobNum !== 'number' || !Number.isSafeInteger(jobNum) || jobNum < 1) throw new Error(`${where}: "job_num" must be a positive integer`)
    switch (op) {
      case 'schedule':
      case 'return':
        this.jobs.set(jobNum, decodeJob(fields, 'main', where))
        break
      case 'lease':
        // Only a job that is there can be leased: its content is in an earlier record or the snapshot.
        if (!this.jobs.has(jobNum)) this.jobs.set(jobNum, 'present')
        break
      case 'bury':
        this.jobs.set(jobNum, { dead: decodeJob(fields, 'main', where), report: decodeReport(fields, where) })
        break
      case 'take':
      case 'ack':
      case 'delete':
        this.jobs.set(jobNum, null)
        break
      default:
        throw new Error(`${where}: unknown op ${JSON.stringify(op)}`)
    }
    this.records++
    if (jobNum > this.highestJobNum) this.highestJobNum = jobNum
  }
}

/** Reads every journal generation in `dir`, oldest first. A bad record ends its file's replay. */
export function readJournal(dir: string, logger: Logger): { state: JournalState; generations: number[] } {
  const state = new JournalState()
  const generations = journalGenerations(dir)
  for (const generation of generations) readGeneration(journalFile(dir, generation), state, logger)
  return { state, generations }
}

function readGeneration(file: string, state: JournalState, logger: Logger): void {
  let lineNo = 0
  let goodBytes = 0
  for (const line of readLines(file)) {
    lineNo++
    const problem = replayLine(line, state, `${file}:${lineNo}`)
    if (problem !== undefined) {
      // A torn write (a crash mid-append) leaves a partial last record. Anything after a bad
      // record was never acknowledged as synced, so replay of this file stops there.
      const ignored = statSync(file).size - goodBytes
      logger.warn({ file, line: lineNo, problem, ignored_bytes: ignored }, 'journal: torn or damaged record; the rest of this file is ignored')
      return
    }
    goodBytes += Buffer.byteLength(line) + 1
  }
}

/** Applies one line; returns what is wrong with it, if anything. */
function replayLine(line: string, state: JournalState, where: string): string | undefined {
  if (line === '') return 'an empty line'
  if (line.length < 11 || line[8] !== ' ') return 'no checksum'
  const json = line.slice(9)
  if (crc32(json) !== Number.parseInt(line.slice(0, 8), 16)) return 'checksum mismatch'
  let fields: Record<string, unknown>
  try {
    fields = JSON.parse(json) as Record<string, unknown>
  } catch (err) {
    return `not valid JSON: ${(err as Error).message}`
  }
  try {
    state.apply(String(fields.op), fields, where)
  } catch (err) {
    return (err as Error).message
  }
  return undefined
}
