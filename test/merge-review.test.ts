import t from 'tap'
import { call, daemonForTest, removeDir, startDaemon, tempDir } from './helpers/daemon'

/**
 * Where the features merged from issues 11 and 14 meet: pages of a lane with fair groups while
 * receivers take from it, and unique keys of jobs the operators move between lanes.
 */

type Listed = { job_num: number }

async function ok(url: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await call(url, body)
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.text}`)
  return r.body
}

t.test('a cursor into a grouped lane whose job was taken meanwhile still walks every job left', async (t) => {
  const d = await daemonForTest(t)
  // Groups a (jobs 1-3) and b (4-6), one priority: served 1, 4, 2, 5, 3, 6.
  const jobs = ['a', 'a', 'a', 'b', 'b', 'b'].map((group, i) => ({ lane: 'g', group, message: `${group}${i}` }))
  const first = (await ok(`${d.url}/schedule`, { jobs })).first_job_num as number
  const n = (i: number): number => first + i
  const page1 = await ok(`${d.url}/jobs?lane=g&limit=2`)
  t.same((page1.jobs as Listed[]).map((j) => j.job_num), [n(0), n(3)], 'the first page in serving order')
  t.type(page1.next_cursor, 'string')
  // Both jobs of the first page are taken, the cursor's one among them.
  t.equal((await ok(`${d.url}/receive_noblock`, { lane: 'g' })).job_num, n(0))
  t.equal((await ok(`${d.url}/receive_noblock`, { lane: 'g' })).job_num, n(3))
  const page2 = await ok(`${d.url}/jobs?lane=g&limit=10&cursor=${String(page1.next_cursor)}`)
  t.same((page2.jobs as Listed[]).map((j) => j.job_num), [n(1), n(4), n(2), n(5)], 'the jobs left, none skipped, in serving order')
})

t.test('a unique job moved to another lane takes its key along', async (t) => {
  const d = await daemonForTest(t)
  const job = await ok(`${d.url}/schedule`, { lane: 'from', message: 'invoice 7', unique_key: 'invoice-7' })
  await ok(`${d.url}/move`, { hash: job.hash, lane: 'to' })
  const onTo = await ok(`${d.url}/schedule`, { lane: 'to', message: 'invoice 7', unique_key: 'invoice-7' })
  t.equal(onTo.code, 16, 'the key is held on the lane the job now waits in')
  t.equal(onTo.hash, job.hash)
  const onFrom = await ok(`${d.url}/schedule`, { lane: 'from', message: 'invoice 7 again', unique_key: 'invoice-7' })
  t.equal(onFrom.code, 0, 'the lane it left no longer holds it')
  await ok(`${d.url}/delete`, { hash: onFrom.hash })
  // Taken for good (unique_for 0): the key is free on both lanes, and nothing stays held.
  t.equal((await ok(`${d.url}/receive_noblock`, { lane: 'to' })).hash, job.hash)
  t.equal((await ok(`${d.url}/schedule`, { lane: 'from', message: 'again', unique_key: 'invoice-7' })).code, 0, 'free on the lane it left')
  t.equal((await ok(`${d.url}/schedule`, { lane: 'to', message: 'again', unique_key: 'invoice-7' })).code, 0, 'free on the lane it went to')
  const server = ((await ok(`${d.url}/`)).payload as { server: { unique_keys_held: number } }).server
  t.equal(server.unique_keys_held, 2, 'only the two new jobs hold keys')
})

t.test('a unique job is not moved to a lane where another job holds its key', async (t) => {
  const d = await daemonForTest(t)
  const there = await ok(`${d.url}/schedule`, { lane: 'to', message: 'a', unique_key: 'k' })
  const job = await ok(`${d.url}/schedule`, { lane: 'from', message: 'b', unique_key: 'k' })
  const refused = await call(`${d.url}/move`, { hash: job.hash, lane: 'to' })
  t.same([refused.status, refused.body.code], [409, 12])
  t.match(refused.body.message, new RegExp(`unique_key "k", which job ${String(there.job_num)} holds on lane "to"`))
  t.equal(((await ok(`${d.url}/job?hash=${String(job.hash)}`)) as { lane: string }).lane, 'from', 'it stays where it was')
  t.equal((await ok(`${d.url}/schedule`, { lane: 'from', message: 'c', unique_key: 'k' })).code, 16, 'holding its key there')
})

t.test('journal: a lane paused with no job left is still there after a kill, paused, and can be resumed', async (t) => {
  const dataDir = tempDir()
  t.teardown(() => removeDir(dataDir))
  const args = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']
  const first = await startDaemon({ dataDir, args })
  const job = await ok(`${first.url}/schedule`, { lane: 'a', message: 'x', unique_key: 'k', unique_for: 600 })
  t.equal((await ok(`${first.url}/receive_noblock`, { lane: 'a' })).hash, job.hash)
  await ok(`${first.url}/pause`, { lane: 'a' })
  await first.stop('SIGKILL')

  const second = await startDaemon({ dataDir, args })
  t.teardown(() => second.stop('SIGKILL'))
  const lanes = (await ok(`${second.url}/lanes`)).lanes as { lane: string; paused: boolean }[]
  t.match(lanes.find((l) => l.lane === 'a'), { paused: true }, 'listed, paused')
  const held = await ok(`${second.url}/schedule`, { lane: 'a', message: 'y', unique_key: 'k' })
  t.match(held, { code: 16, hash: job.hash }, 'the finished job still holds its key')
  t.match(await ok(`${second.url}/resume`, { lane: 'a' }), { paused: false }, 'an operator can resume it')
})
