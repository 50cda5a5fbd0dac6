/**
 * `dispenserd migrate` into Redis: an in-memory store's jobs written into a prefix that holds no
 * lane yet, keeping their numbers, order and hashes.
 */
import type { Job } from '../../queue/job'
import type { LaneSnapshot } from '../../queue/queue'
import { Script } from './connection'
import { metaKey } from './keys'
import { META_SCRIPTS } from './lua/meta'
import { encodeRecord } from './records'
import type { RedisSession } from './session'

/**
 * `dispenserd migrate`: loads an in-memory store's jobs (each lane in serving order, dead jobs
 * with their reports) into a prefix that holds no lane yet. Jobs keep their number, priority,
 * creation time, attempts, delay and hash (an index maps the old hashes); the job number counter
 * is raised to `nextJobNum`. Returns how many jobs and dead jobs were written.
 */
export async function importJobs(session: RedisSession, lanes: readonly LaneSnapshot[], dead: ReadonlyMap<string, Job[]>, nextJobNum: number): Promise<{ jobs: number; dead: number }> {
  const { prefix } = session.options
  await session.lanes.refresh(session.client)
  if (session.lanes.size > 0) throw new Error(`prefix "${prefix}" already holds ${session.lanes.size} lanes; migrate into an empty prefix (--redis-prefix)`)
  const written = { jobs: 0, dead: 0 }
  const write = async (lane: string, jobs: Job[], kind: 'q' | 'dead'): Promise<void> => {
    const laneId = await session.lanes.ensure(session.client, lane)
    for (let i = 0; i < jobs.length; i += 1000) {
      const chunk = jobs.slice(i, i + 1000)
      const args: (string | number)[] = [chunk.length]
      for (const job of chunk) {
        const record = encodeRecord({ jobNum: job.jobNum, created: job.created, priority: job.priority, attempts: job.attempts, hash: job.hash }, job.message)
        args.push(job.priority, record, job.notBefore, kind, job.report === undefined ? '' : JSON.stringify(job.report))
      }
      const first = (await session.laneCall(lane, 'import', args, 'change')) as unknown as number
      const index: string[] = []
      chunk.forEach((job, k) => index.push(job.hash, laneId + (first + k).toString(16).padStart(12, '0')))
      await session.client.hset(metaKey(prefix, 'foreign'), ...index)
      written[kind === 'q' ? 'jobs' : 'dead'] += chunk.length
    }
  }
  for (const { lane, parts } of lanes) await write(lane, parts.flat(), 'q')
  for (const [lane, jobs] of dead) await write(lane, jobs, 'dead')
  await new Script(META_SCRIPTS.jobNumFloor).run(session.client, [metaKey(prefix, 'job_num')], [nextJobNum])
  return written
}
