import t from 'tap'
import { call, daemonForTest } from './helpers/daemon'

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
