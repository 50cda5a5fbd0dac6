import t from 'tap'
import { type Running, call, removeDir, startDaemon, until } from './helpers/daemon'
import { daemonWithScriptLane } from './helpers/runner-lane'

/**
 * The operators' job API on the real daemon: jobs found by hash or number on every lane, pages of
 * a lane's jobs by state (searched, sorted, by offset or cursor), moves, bulk actions, pause and
 * resume, kill, ETAs.
 */

let d: Running
t.before(async () => {
  d = await startDaemon({ args: ['--persist-interval', '0'] })
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
})

type Job = { job_num: number; hash: string; lane: string; priority: number; message: string; state?: string; position?: number; eta_seconds?: number | null }

async function ok(endpoint: string, body?: unknown, daemon = d): Promise<Record<string, unknown>> {
  const r = await call(`${daemon.url}${endpoint}`, body)
  if (r.status !== 200) throw new Error(`${endpoint}: ${r.status} ${r.text}`)
  return r.body
}

async function schedule(lane: string, jobs: { message: string; priority?: number; delay?: number }[], daemon = d): Promise<Job[]> {
  const first = (await ok('/schedule', { jobs: jobs.map((j) => ({ lane, ...j })) }, daemon)).first_job_num as number
  return Promise.all(jobs.map(async (_, i) => (await ok(`/job?job_num=${first + i}`, undefined, daemon)) as unknown as Job))
}

async function page(query: string, daemon = d): Promise<{ total: number; next_cursor: string | null; jobs: Job[] }> {
  return (await ok(`/jobs?${query}`, undefined, daemon)) as unknown as { total: number; next_cursor: string | null; jobs: Job[] }
}

t.test('a plain lane\'s queued job is found by hash and by number, with its position and ETA', async (t) => {
  const [a, b] = await schedule('find', [{ message: 'a', priority: 5 }, { message: 'b', priority: 1 }])
  const byHash = (await ok(`/job?hash=${a!.hash}`)) as unknown as Job
  t.match(byHash, { state: 'queued', job_num: a!.job_num, message: 'a', position: 1, eta_seconds: null })
  const byNum = (await ok(`/job?job_num=${b!.job_num}`)) as unknown as Job
  t.match(byNum, { state: 'queued', hash: b!.hash, position: 0 })
  const missing = await call(`${d.url}/job?job_num=99999999`)
  t.same([missing.status, missing.body.code], [404, 11])
  const both = await call(`${d.url}/job?job_num=1&hash=x`)
  t.same([both.status, both.body.code], [400, 1])
  t.match(both.body.message, /either "hash" or "job_num"/)
})

t.test('pages of ready jobs: serving order by cursor, by offset, oldest and newest first, searched', async (t) => {
  const jobs = await schedule('paged', Array.from({ length: 250 }, (_, i) => ({ message: `m${i}${i % 10 === 0 ? ' needle' : ''}`, priority: i % 3 })))
  const serving = [...jobs].sort((x, y) => x.priority - y.priority || x.job_num - y.job_num).map((j) => j.job_num)
  const seen: number[] = []
  let cursor: string | null = ''
  for (let pages = 0; cursor !== null; pages++) {
    const p = await page(`lane=paged&limit=100${cursor === '' ? '' : `&cursor=${cursor}`}`)
    t.equal(p.total, 250)
    seen.push(...p.jobs.map((j) => j.job_num))
    cursor = p.next_cursor
    t.ok(pages < 3, 'three pages')
  }
  t.same(seen, serving, 'cursors walk the lane in serving order')
  const byOffset = await page('lane=paged&offset=120&limit=5')
  t.same(byOffset.jobs.map((j) => j.job_num), serving.slice(120, 125))
  t.same(byOffset.jobs.map((j) => j.position), [120, 121, 122, 123, 124], 'each with its position')
  const oldest = await page('lane=paged&sort=oldest&limit=3')
  t.same(oldest.jobs.map((j) => j.job_num), jobs.slice(0, 3).map((j) => j.job_num))
  const newest = await page(`lane=paged&sort=newest&limit=3&cursor=${jobs[200]!.job_num}`)
  t.same(newest.jobs.map((j) => j.job_num), jobs.slice(197, 200).reverse().map((j) => j.job_num), 'newest first, after a cursor')
  const found = await page('lane=paged&q=needle&limit=100')
  t.same(found.jobs.map((j) => j.message).sort(), jobs.filter((j) => j.message.includes('needle')).map((j) => j.message).sort(), 'q finds the messages containing it')
  const unpaged = await call(`${d.url}/jobs`)
  t.ok(Array.isArray(unpaged.body.paged), 'without a paging field, the original listing of every lane')
  const bad = await call(`${d.url}/jobs?lane=paged&state=lost`)
  t.same([bad.status, bad.body.code], [400, 1])
  t.match(bad.body.message, /"state" must be one of ready, leased, delayed, running, dead, succeeded/)
  const badCursor = await call(`${d.url}/jobs?lane=paged&cursor=12`)
  t.match(badCursor.body.message, /"cursor"/)
  const tooMany = await call(`${d.url}/jobs?lane=paged&limit=5000`)
  t.match(tooMany.body.message, /"limit" must be an integer from 1 to 1000/)
})

t.test('pages of delayed and leased jobs', async (t) => {
  await schedule('held', [{ message: 'later', delay: 60 }, { message: 'now' }, { message: 'too' }])
  await ok('/receive_noblock', { lane: 'held', lease: 60 })
  t.same((await page('lane=held&state=delayed')).jobs.map((j) => j.message), ['later'])
  t.same((await page('lane=held&state=leased')).jobs.map((j) => j.message), ['now'])
  t.same((await page('lane=held')).jobs.map((j) => j.message), ['too'])
})

t.test('a plain lane\'s queued job can be deleted by hash, and moved to another lane or priority', async (t) => {
  const [a, b] = await schedule('mv', [{ message: 'a' }, { message: 'b' }])
  t.match(await ok('/delete', { hash: a!.hash }), { job_num: a!.job_num })
  const moved = await ok('/move', { hash: b!.hash, lane: 'mv2', priority: 7 })
  t.match(moved, { job_num: b!.job_num, hash: b!.hash, lane: 'mv2', priority: 7 })
  t.match(await ok(`/job?hash=${b!.hash}`), { state: 'queued', lane: 'mv2', priority: 7 })
  t.same((await page('lane=mv')).jobs, [])
  const r = await ok('/receive_noblock', { lane: 'mv2' })
  t.equal(r.hash, b!.hash, 'served from its new lane with its hash')
  const none = await call(`${d.url}/move`, { hash: b!.hash, priority: 1 })
  t.same([none.status, none.body.code], [404, 11], 'taken: nothing to move')
  const nowhere = await call(`${d.url}/move`, { hash: b!.hash })
  t.match(nowhere.body.message, /give "lane", "priority" or both/)
})

t.test('bulk actions: delete and reprioritize by hashes or by filter, each counted', async (t) => {
  const jobs = await schedule('bulk', Array.from({ length: 30 }, (_, i) => ({ message: i < 10 ? `drop ${i}` : `keep ${i}` })))
  const deleted = await ok('/bulk', { action: 'delete', filter: { lane: 'bulk', q: 'drop' } })
  t.match(deleted, { action: 'delete', matched: 10, done: 10, failed: 0 })
  const again = await ok('/bulk', { action: 'delete', hashes: [jobs[0]!.hash, jobs[10]!.hash] })
  t.match(again, { matched: 2, done: 1, failed: 1 })
  t.match((again.errors as unknown[])[0], { hash: jobs[0]!.hash, code: 11 })
  const reprioritized = await ok('/bulk', { action: 'reprioritize', filter: { lane: 'bulk' }, priority: 3 })
  t.match(reprioritized, { matched: 19, done: 19 })
  const p = await page('lane=bulk&limit=100')
  t.equal(p.total, 19)
  t.ok(p.jobs.every((j) => j.priority === 3), 'every job at priority 3, each once')
  const relocated = await ok('/bulk', { action: 'relocate', filter: { lane: 'bulk' }, lane: 'bulk-moved' })
  t.match(relocated, { matched: 19, done: 19 })
  t.equal((await page('lane=bulk-moved')).total, 19)
  const bad = await call(`${d.url}/bulk`, { action: 'explode', hashes: ['x'] })
  t.match(bad.body.message, /"action" must be one of delete, retry, relocate, reprioritize/)
  const neither = await call(`${d.url}/bulk`, { action: 'delete' })
  t.match(neither.body.message, /either "hashes" or "filter"/)
})

t.test('a paused lane serves no receiver; resumed, the parked receiver gets the job', async (t) => {
  await schedule('p', [{ message: 'one' }])
  t.match(await ok('/pause', { lane: 'p' }), { lane: 'p', paused: true })
  t.match(await ok('/receive_noblock', { lane: 'p' }), { code: 2 }, 'paused: empty')
  t.match(await ok('/receive_noblock', { lane: 'p', count: 5 }), { code: 2 }, 'a batch too')
  const waiting = call(`${d.url}/receive_block`, { lane: 'p' })
  await until(async () => ((await ok('/')).payload as { idle_workers: Record<string, number> }).idle_workers.p === 1, 'the receiver to park')
  await ok('/resume', { lane: 'p' })
  t.match((await waiting).body, { message: 'one' })
  const unknown = await call(`${d.url}/pause`, { lane: 'nosuchlane' })
  t.match(unknown.body.message, /no lane is named "nosuchlane"/)
  t.match((await call(`${d.url}/pause`, {})).body.message, /missing lane/)
})

t.test('runner lanes: paused, no run starts; a running job can be killed (dead, reason killed); bulk retry by filter', async (t) => {
  const r = await daemonWithScriptLane(t, 'work', '[ "$MODE" = hang ] && sleep 60\nexit 0', { spec: { allowed_env: ['MODE'] } })
  await ok('/pause', { lane: 'work' }, r)
  const [hang] = await schedule('work', [{ message: JSON.stringify({ arguments: { MODE: 'hang' } }) }], r)
  // An idle slot is handed a job within the schedule itself: by now it would be running.
  t.match(await ok(`/job?hash=${hang!.hash}`, undefined, r), { state: 'queued' }, 'paused: not started')
  await ok('/resume', { lane: 'work' }, r)
  await until(async () => (await ok(`/job?hash=${hang!.hash}`, undefined, r)).state === 'running', 'the run to start')
  t.match((await page('lane=work&state=running', r)).jobs.map((j) => j.hash), [hang!.hash], 'listed as running')
  t.match(await ok('/kill', { hash: hang!.hash }, r), { hash: hang!.hash })
  await until(async () => (await ok(`/job?hash=${hang!.hash}`, undefined, r)).state === 'dead', 'the killed job to be dead')
  t.match(((await ok(`/job?hash=${hang!.hash}`, undefined, r)).last_run as Record<string, unknown>).reason, 'killed')
  const notRunning = await call(`${r.url}/kill`, { hash: hang!.hash })
  t.same([notRunning.status, notRunning.body.code], [409, 12])
  // The dead job, fixed by a move of nothing but its state: retried by filter, it runs (and succeeds).
  t.match(await ok('/bulk', { action: 'retry', filter: { lane: 'work', state: 'dead' } }, r), { matched: 1, done: 1 })
  t.match(await ok(`/job?hash=${hang!.hash}`, undefined, r), { state: /queued|running/ })
  await ok('/kill', { hash: hang!.hash }, r).catch(() => undefined)
})
