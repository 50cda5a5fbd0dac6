import t from 'tap'
import { Job } from '../src/queue/job'
import { Queue } from '../src/queue/queue'

/** Groups in the pure queue: weighted round-robin within a priority, strict priority across, FIFO within a group. */

function setup(weights?: Record<string, number>): Queue {
  const q = new Queue()
  if (weights !== undefined) q.setGroupWeights('main', weights)
  return q
}

const put = (q: Queue, group: string | undefined, n: number, priority = 5): void => {
  for (let i = 0; i < n; i++) q.schedule({ message: `${group ?? '-'}${i}`, lane: 'main', priority, group })
}

const takeAll = (q: Queue, n = Infinity): string[] => {
  const out: string[] = []
  for (let job: Job | undefined; out.length < n && (job = q.receive('main')) !== undefined; ) out.push(job.message)
  return out
}

t.test('groups take turns within a priority; a flood from one does not starve the others', (t) => {
  const q = setup()
  put(q, 'a', 5)
  put(q, 'b', 2)
  put(q, 'c', 1)
  const order = q.jobsInOrder('main').map((job) => job.message)
  t.same(takeAll(q), ['a0', 'b0', 'c0', 'a1', 'b1', 'a2', 'a3', 'a4'])
  t.same(order, ['a0', 'b0', 'c0', 'a1', 'b1', 'a2', 'a3', 'a4'], 'listed in the order served')
  t.end()
})

t.test('weights give shares; priority still comes first; jobs without a group are the group ""', (t) => {
  const q = setup({ a: 3 })
  put(q, undefined, 2)
  put(q, 'a', 6)
  put(q, 'b', 3)
  put(q, 'x', 1, 1)
  t.same(q.jobsInOrder('main').map((job) => job.message), ['x0', '-0', 'a0', 'a1', 'a2', 'b0', '-1', 'a3', 'a4', 'a5', 'b1', 'b2'])
  t.same(takeAll(q), ['x0', '-0', 'a0', 'a1', 'a2', 'b0', '-1', 'a3', 'a4', 'a5', 'b1', 'b2'])
  t.end()
})

t.test('a job put back keeps its place in its group; deleting from the middle leaves the round right', (t) => {
  const q = setup()
  q.indexLane('main')
  put(q, 'a', 3)
  put(q, 'b', 2)
  const a0 = q.receive('main')!
  q.returnUndelivered(a0, undefined)
  const b1 = q.jobsInOrder('main').find((job) => job.message === 'b1')!
  q.deleteJob(b1.hash)
  t.same(takeAll(q), ['b0', 'a0', 'a1', 'a2'], 'b had its turn (a0 was taken in a\'s); a0 is first of a again')
  t.end()
})

t.test('a lane that never sees a group keeps strict FIFO and its plain buckets', (t) => {
  const q = setup()
  put(q, undefined, 4)
  t.same(takeAll(q), ['-0', '-1', '-2', '-3'])
  t.end()
})
