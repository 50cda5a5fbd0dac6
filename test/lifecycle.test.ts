import t from 'tap'
import { codeOf } from './helpers/errors'
import type { Job, RunReport } from '../src/queue/job'
import { Queue } from '../src/queue/queue'

/** The job lifecycle in the pure queue (runner lanes): states, dead and succeeded jobs, deletion. */

function setup(keepMs = 60_000, maxFinished = 100): { q: Queue; clock: { ms: number } } {
  const clock = { ms: 1_700_000_000_000 }
  const q = new Queue({ clock: () => clock.ms, history: { keepFinishedMs: () => keepMs, maxFinished } })
  q.indexLane('work')
  return { q, clock }
}

function report(state: RunReport['state'], reason: string | null = null): RunReport {
  return { state, startedAt: 1, finishedAt: 2, durationMs: 1000, reason, exitCode: reason === null ? 0 : 1, httpStatus: null, output: '' }
}

function add(q: Queue, n: number, priority = 5): Job[] {
  return Array.from({ length: n }, (_, i) => q.schedule({ lane: 'work', priority, message: `m${i}` }))
}

t.test('a job is found by hash in every state of its life', (t) => {
  const { q, clock } = setup()
  const [job] = add(q, 1)
  t.equal(q.findJob(job!.hash)?.state, 'queued')
  const run = q.receiveLeased('work', 10_000)!
  t.equal(q.findJob(job!.hash)?.state, 'running', 'leased on a runner lane means running')
  q.retryLater(run, 5_000)
  t.equal(q.findJob(job!.hash)?.state, 'delayed')
  clock.ms += 5_000
  q.expireDue()
  t.equal(q.findJob(job!.hash)?.state, 'queued')
  q.bury(q.receiveLeased('work', 10_000)!, report('dead', 'exit code 1'))
  t.equal(q.findJob(job!.hash)?.state, 'dead')
  t.same(q.deadJobs('work', 0, 10).jobs, [job])
  q.retryDead(job!.hash)
  t.equal(q.findJob(job!.hash)?.state, 'queued')
  q.complete(q.receiveLeased('work', 10_000)!, report('succeeded'))
  t.equal(q.findJob(job!.hash)?.state, 'succeeded')
  t.equal(q.totalQueued, 0)
  t.end()
})

t.test('succeeded jobs are forgotten after keep_finished, and past max_finished', (t) => {
  const { q, clock } = setup(1_000, 2)
  const jobs = add(q, 3)
  for (let i = 0; i < jobs.length; i++) q.complete(q.receiveLeased('work', 10_000)!, report('succeeded'))
  t.equal(q.findJob(jobs[0]!.hash), undefined, 'the oldest went past max_finished')
  t.equal(q.findJob(jobs[2]!.hash)?.state, 'succeeded')
  clock.ms += 1_000
  t.equal(q.findJob(jobs[2]!.hash), undefined, 'and the rest after keep_finished')
  t.end()
})

t.test('deleting from the middle of a lane keeps the others in order', (t) => {
  const { q } = setup()
  const jobs = add(q, 10)
  for (const i of [0, 4, 5, 9]) q.deleteJob(jobs[i]!.hash)
  t.same(q.jobsInOrder('work').map((j) => j.jobNum), [2, 3, 4, 7, 8, 9])
  t.equal(q.stats().queued.work, 6)
  t.equal(q.totalQueued, 6)
  const served: number[] = []
  for (let h = q.receiveLeased('work', 1_000); h !== undefined; h = q.receiveLeased('work', 1_000)) served.push(h.job.jobNum)
  t.same(served, [2, 3, 4, 7, 8, 9], 'deleted jobs are skipped, never served')
  t.end()
})

t.test('deleting a put-back job (out of the FIFO) and the last job of a priority', (t) => {
  const { q } = setup()
  const [a, b, c] = add(q, 3)
  const held = q.receiveLeased('work', 1_000)! // a
  add(q, 1) // d, newer than a
  q.retryLater(held, 0) // a waits in the put-back heap, ahead of b
  q.deleteJob(a!.hash)
  t.same(q.jobsInOrder('work').map((j) => j.jobNum), [b!.jobNum, c!.jobNum, 4])
  const [only] = add(q, 1, 1)
  q.deleteJob(only!.hash)
  t.same(q.jobsInOrder('work').map((j) => j.jobNum), [b!.jobNum, c!.jobNum, 4], 'an emptied priority leaves no trace')
  t.equal(q.receiveLeased('work', 1_000)!.job.jobNum, b!.jobNum)
  t.end()
})

t.test('what cannot be deleted or retried says why', (t) => {
  const { q } = setup()
  const [job] = add(q, 1)
  q.receiveLeased('work', 1_000)
  t.equal(codeOf(() => q.deleteJob(job!.hash)), 'conflict', 'running')
  t.equal(codeOf(() => q.retryDead(job!.hash)), 'job_not_found', 'not dead')
  t.equal(codeOf(() => q.deleteJob('f'.repeat(40))), 'job_not_found')
  const plain = q.schedule({ lane: 'main', priority: 1, message: 'x' })
  t.equal(q.deleteJob(plain.hash), plain, "plain lanes' queued jobs are found by hash too")
  const delayed = q.schedule({ lane: 'main', priority: 1, message: 'later', delayMs: 5_000 })
  t.equal(q.deleteJob(delayed.hash), delayed, 'delayed jobs of any lane can be deleted')
  t.end()
})
