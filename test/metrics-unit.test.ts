import t from 'tap'
import { JobMetrics } from '../src/metrics/job-metrics'
import { runnerJobsTotal } from '../src/metrics/jobs-total'
import { ScheduleTimes } from '../src/metrics/schedule-times'
import { Job } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'

const job = (jobNum: number, createdSeconds: number, lane = 'main'): Job => new Job(jobNum, stampOf(lane, 0, createdSeconds), 'm')

t.test('schedule times: to the millisecond for recent jobs, from the timestamp for older ones', (t) => {
  let now = 1_000_000
  const times = new ScheduleTimes(() => now)
  times.note(10)
  times.note(11) // the same millisecond: no new mark
  now += 7
  times.note(12)
  now += 1
  t.equal(times.scheduledAt(job(11, 999)), 1_000_000)
  t.equal(times.scheduledAt(job(12, 999)), 1_000_007)
  t.equal(times.scheduledAt(job(500, 999)), 1_000_007, 'a later job than any mark: the newest mark')
  t.equal(times.scheduledAt(job(3, 999)), 999_000, 'older than the marks (restored): its timestamp')
  t.end()
})

t.test('schedule times: the ring keeps the newest marks', (t) => {
  let now = 0
  const times = new ScheduleTimes(() => now)
  for (let n = 1; n <= 70_000; n++) {
    now = n * 10
    times.note(n)
  }
  t.equal(times.scheduledAt(job(69_999, 0)), 699_990)
  t.equal(times.scheduledAt(job(4_465, 0)), 44_650, 'the oldest mark kept')
  t.equal(times.scheduledAt(job(4_464, 7)), 7_000, 'overwritten: its timestamp')
  t.end()
})

t.test('delivery latency is measured from the schedule to the hand-over', (t) => {
  let now = 5_000_000
  const metrics = new JobMetrics(() => now)
  metrics.scheduled(job(1, 5000))
  now += 3
  metrics.taken(job(1, 5000), undefined)
  const { latency } = metrics.tally('main')
  t.equal(latency.count, 1)
  t.equal(latency.sum, 0.003)
  t.equal(latency.counts[latency.bounds.indexOf(0.005)], 1, 'in the bucket up to 5 ms')
  t.end()
})

t.test('a batch receive counts every job and observes each one\'s latency, as jobs taken one by one are', (t) => {
  // Jobs scheduled over several milliseconds, some restored (older than every mark), some of
  // another lane, taken out of number order (priorities): one observation per run of jobs that
  // waited equally long must add up to exactly what one observation per job gives.
  let now = 9_000_000
  const one = new JobMetrics(() => now)
  const batch = new JobMetrics(() => now)
  const jobs: Job[] = []
  for (let n = 3; n <= 42; n++) {
    if (n % 7 === 0) now += 1
    if (n % 13 === 0) now += 3
    const j = job(n, 8_990 + (n % 3), n % 11 === 0 ? 'other' : 'main')
    jobs.push(j)
    one.scheduled(j)
    batch.scheduled(j)
  }
  const restored = [job(2, 8_000), job(1, 8_500)]
  now += 2
  const order = [...restored, ...jobs.filter((_, i) => i % 2 === 0), ...jobs.filter((_, i) => i % 2 === 1).reverse()]
  for (const j of order) one.taken(j, undefined)
  batch.takenMany(order.map((j) => ({ job: j, lease: undefined })))
  for (const lane of ['main', 'other']) {
    const a = one.tally(lane)
    const b = batch.tally(lane)
    t.equal(b.received, a.received, `${lane}: received`)
    t.equal(b.latency.count, a.latency.count, `${lane}: observations`)
    t.same([...b.latency.counts], [...a.latency.counts], `${lane}: buckets`)
    t.ok(Math.abs(b.latency.sum - a.latency.sum) < 1e-9, `${lane}: sum ${b.latency.sum} ≈ ${a.latency.sum}`)
  }
  t.equal(one.tally('main').received + one.tally('other').received, order.length)
  t.end()
})

t.test('jobs_total: a runner\'s own samples (container lanes) are used, other runner lanes are counted from events', (t) => {
  const metrics = new JobMetrics()
  const run = job(1, 0, 'exec-lane')
  run.attempts = 1
  metrics.runStarted(run)
  metrics.runFinished(run, { state: 'succeeded', startedAt: 0, finishedAt: 0, durationMs: 5, reason: null, exitCode: 0, httpStatus: null, output: '' })
  // Events on a container lane are not counted twice: its runner's samples stand.
  const container = job(2, 0, 'box')
  container.attempts = 1
  metrics.runStarted(container)
  const runners = {
    'exec-lane': { runner: 'exec', concurrency: 1, running: 0 },
    box: { runner: 'container', concurrency: 2, running: 0, jobs_total: [{ labels: { namespace: 'default', action: 'create', status: '' }, value: 4 }, { labels: { namespace: 'default', action: 'die', status: '137' }, value: 1 }] },
    box2: { runner: 'container', concurrency: 2, running: 0, jobs_total: [{ labels: { namespace: 'default', action: 'create', status: '' }, value: 2 }, { bogus: true }] },
  }
  t.same(runnerJobsTotal(runners, metrics.lanes), [
    { labels: { namespace: 'exec-lane', action: 'create', status: '' }, value: 1 },
    { labels: { namespace: 'exec-lane', action: 'start', status: '' }, value: 1 },
    { labels: { namespace: 'exec-lane', action: 'die', status: '0' }, value: 1 },
    { labels: { namespace: 'default', action: 'create', status: '' }, value: 6 },
    { labels: { namespace: 'default', action: 'die', status: '137' }, value: 1 },
  ])
  t.end()
})
