import t from 'tap'
import { HashScheme } from '../src/queue/hash'
import type { Job } from '../src/queue/job'
import { SCAN_BUDGET } from '../src/queue/pages'
import { Queue } from '../src/queue/queue'

/** Pages of a lane's ready jobs, against its full listing, with jobs removed from the middle and put back out of order. */

function pageAll(queue: Queue, sort: 'order' | 'oldest' | 'newest', limit: number, q?: string): Job[] {
  const out: Job[] = []
  let cursor: string | undefined
  for (let i = 0; i < 10_000; i++) {
    const page = queue.page({ lane: 'main', state: 'ready', sort, offset: 0, cursor, limit, q })
    out.push(...page.jobs)
    if (page.nextCursor === null) return out
    cursor = page.nextCursor
  }
  throw new Error('pages never ended')
}

t.test('cursor pages cover the lane exactly once, in each order, whatever was removed or put back', (t) => {
  const queue = new Queue()
  let seed = 7
  const random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n
  const jobs = Array.from({ length: 3000 }, (_, i) => queue.schedule({ lane: 'main', message: `m${i}`, priority: random(4) }))
  const doomed = new Set(Array.from({ length: 300 }, () => random(jobs.length)))
  for (const i of doomed) queue.deleteJob(jobs[i]!.hash)
  // Taken and put back (a failed hand-over): they wait in the buckets' put-back heaps.
  for (let i = 0; i < 50; i++) {
    const taken = queue.receive('main')!
    queue.schedule({ lane: 'main', message: 'newer', priority: taken.priority })
    queue.returnUndelivered(taken, undefined)
  }
  const inOrder = queue.jobsInOrder('main')
  t.same(pageAll(queue, 'order', 97).map((j) => j.jobNum), inOrder.map((j) => j.jobNum), 'serving order')
  const byNumber = [...inOrder].sort((a, b) => a.jobNum - b.jobNum).map((j) => j.jobNum)
  t.same(pageAll(queue, 'oldest', 101).map((j) => j.jobNum), byNumber, 'oldest first')
  t.same(pageAll(queue, 'newest', 89).map((j) => j.jobNum), [...byNumber].reverse(), 'newest first')
  t.same(pageAll(queue, 'order', 10, 'newer').length, 50, 'a search')
  for (const job of inOrder.slice(0, 200)) t.equal(queue.findJob(job.hash)?.position, inOrder.indexOf(job), 'position')
  t.end()
})

t.test('offset pages skip priorities by size', (t) => {
  const queue = new Queue()
  for (let i = 0; i < 1000; i++) queue.schedule({ lane: 'main', message: `m${i}`, priority: i % 5 })
  const inOrder = queue.jobsInOrder('main').map((j) => j.jobNum)
  for (const offset of [0, 1, 199, 200, 201, 650, 999, 1000]) {
    const page = queue.page({ lane: 'main', state: 'ready', sort: 'order', offset, limit: 7 })
    t.same(page.jobs.map((j) => j.jobNum), inOrder.slice(offset, offset + 7), `offset ${offset}`)
  }
  t.end()
})

t.test('a search that matches little stops after SCAN_BUDGET jobs with a cursor to go on from', (t) => {
  const queue = new Queue()
  for (let i = 0; i < SCAN_BUDGET + 10; i++) queue.schedule({ lane: 'main', message: i === SCAN_BUDGET + 5 ? 'needle' : 'hay', priority: 1 })
  const first = queue.page({ lane: 'main', state: 'ready', sort: 'order', offset: 0, limit: 10, q: 'needle' })
  t.same(first.jobs, [])
  t.not(first.nextCursor, null)
  const second = queue.page({ lane: 'main', state: 'ready', sort: 'order', offset: 0, limit: 10, q: 'needle', cursor: first.nextCursor! })
  t.same(second.jobs.map((j) => j.message), ['needle'])
  t.equal(second.nextCursor, null)
  t.end()
})

t.test('an offset a page cannot reach within its budget is refused, not silently dropped', (t) => {
  const queue = new Queue()
  for (let i = 0; i < SCAN_BUDGET + 100; i++) queue.schedule({ lane: 'main', message: 'hay', priority: i % 2 })
  t.throws(() => queue.page({ lane: 'main', state: 'ready', sort: 'oldest', offset: SCAN_BUDGET + 50, limit: 10 }), { message: /"offset" \d+ is past the 100000 jobs a page looks at in oldest order/ })
  t.throws(() => queue.page({ lane: 'main', state: 'ready', sort: 'order', offset: SCAN_BUDGET + 50, limit: 10, q: 'hay' }), { message: /while searching/ })
  const fast = queue.page({ lane: 'main', state: 'ready', sort: 'order', offset: SCAN_BUDGET + 50, limit: 10 })
  t.equal(fast.jobs.length, 10, 'serving order without a search skips by size, however far')
  t.end()
})

t.test('a derived hash leads back to its job number; anything else to none', (t) => {
  const scheme = new HashScheme()
  for (const n of [1, 2, 77, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) t.equal(scheme.jobNumOf(scheme.hashOf(n)), n)
  t.equal(scheme.jobNumOf(new HashScheme().hashOf(5)), undefined, 'another process\'s hash')
  t.equal(scheme.jobNumOf('zz'), undefined)
  t.equal(scheme.jobNumOf(`${scheme.hashOf(1).slice(0, 24)}zzzzzzzzzzzzzzzz`), undefined)
  t.end()
})
