import { jobMembersJson } from './job'
import type { Queue } from './queue'

/**
 * Every lane with its jobs in serving order, as JSON: the body of `GET /jobs` and the content of
 * `queue.json`, which share the original dispenserd's shape. One job per line keeps it readable
 * without the cost of indenting millions of jobs.
 */
export function encodeJobsByLane(queue: Queue): string {
  const parts: string[] = ['{\n']
  const lanes = queue.laneNames()
  lanes.forEach((lane, laneIndex) => {
    const jobs = queue.jobsInOrder(lane)
    parts.push(JSON.stringify(lane), ': [')
    jobs.forEach((job, i) => parts.push(i === 0 ? '\n' : ',\n', '{', jobMembersJson(job), '}'))
    parts.push(jobs.length > 0 ? '\n]' : ']', laneIndex < lanes.length - 1 ? ',\n' : '\n')
  })
  parts.push('}\n')
  return parts.join('')
}
