import t from 'tap'
import { HashScheme, processHashes } from '../src/queue/hash'
import { type HeapItem, IndexedHeap } from '../src/queue/heap'
import type { Held } from '../src/queue/held'
import { Job, compareJobs } from '../src/queue/job'
import { LaneStamps, stampOf } from '../src/queue/stamp'
import { Queue } from '../src/queue/queue'
import { ReadyJobs } from '../src/queue/ready'

/** A deterministic queue: fixed clock and readable hashes. */
function makeQueue(): Queue {
  return new Queue({ clock: () => 1_700_000_000_000, makeHash: (n) => n.toString(16).padStart(40, '0') })
}

function drainLane(queue: Queue, lane = 'main'): Job[] {
  const out: Job[] = []
  for (let job = queue.receive(lane); job !== undefined; job = queue.receive(lane)) out.push(job)
  return out
}

/** An element for the heap test. */
class Item implements HeapItem {
  heapIndex = -1

  constructor(
    readonly jobNum: number,
    readonly priority: number,
  ) {}
}

t.test('heap: pops in order and removes from the middle', (t) => {
  // A seeded generator keeps this reproducible.
  let seed = 42
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const order = (a: Item, b: Item): number => a.priority - b.priority || a.jobNum - b.jobNum
  const heap = new IndexedHeap<Item>((a, b) => order(a, b) < 0)
  const all: Item[] = []
  for (let i = 1; i <= 2000; i++) {
    const item = new Item(i, Math.floor(random() * 50))
    heap.push(item)
    all.push(item)
  }
  const removed = all.filter((_, i) => i % 7 === 3)
  for (const item of removed) t.equal(heap.remove(item), true)
  t.equal(heap.remove(removed[0]!), false, 'removing twice is refused')
  t.equal(removed[0]!.heapIndex, -1)
  const expected = all.filter((_, i) => i % 7 !== 3).sort(order)
  const popped: Item[] = []
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) popped.push(item)
  t.same(popped.map((j) => j.jobNum), expected.map((j) => j.jobNum))
  t.equal(heap.size, 0)
  t.end()
})

t.test('ready jobs: random schedules, receives, put-backs, removals from the middle and moves (back under their number too) serve and list in (priority, job number) order, checked against a model at every step', (t) => {
  let seed = 11
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!
  for (const priorities of [1, 3, 40, 100000]) {
    const totals = { jobs: 0, bytes: 0 }
    const ready = new ReadyJobs(totals)
    let model: Job[] = []
    const taken: Job[] = []
    let next = 1
    const mismatches: string[] = []
    const check = (step: number, what: string, got: unknown, expected: unknown): void => {
      if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches.push(`step ${step}: ${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`)
    }
    for (let step = 0; step < 6000 && mismatches.length === 0; step++) {
      const r = random()
      if (r < 0.4) {
        const job = new Job(next++, stampOf('main', Math.floor(random() * priorities), 0), 'm')
        ready.push(job)
        model.push(job)
      } else if (r < 0.5 && taken.length > 0) {
        const job = taken.splice(Math.floor(random() * taken.length), 1)[0]!
        ready.push(job)
        model.push(job)
      } else if (r < 0.65 && model.length > 0) {
        // A delete: the job leaves from wherever it waits.
        const job = pick(model)
        ready.remove(job)
        model = model.filter((j) => j !== job)
      } else if (r < 0.75 && model.length > 0) {
        // A move to the same place, or another priority: a new object with the same number.
        const job = pick(model)
        const moved = job.movedTo(new LaneStamps('main'), random() < 0.5 ? job.priority : Math.floor(random() * priorities))
        ready.remove(job)
        ready.push(moved)
        model = model.map((j) => (j === job ? moved : j))
      } else {
        model.sort(compareJobs)
        const expected = model.shift()
        const got = ready.pop()
        check(step, 'pop', got?.jobNum, expected?.jobNum)
        if (got !== expected) mismatches.push(`step ${step}: popped another object than the model's`)
        if (got !== undefined) taken.push(got)
      }
      model.sort(compareJobs)
      check(step, 'size', ready.size, model.length)
      if (model.length > 0) {
        const job = pick(model)
        check(step, 'find', ready.find(job.jobNum) === job, true)
        check(step, 'position', ready.positionOf(job), model.indexOf(job))
      }
      const gone = Math.floor(random() * next) + 1
      if (!model.some((j) => j.jobNum === gone)) check(step, 'find a job not here', ready.find(gone), undefined)
      if (step % 50 === 0) {
        check(step, 'inOrder', ready.inOrder().map((j) => j.jobNum), model.map((j) => j.jobNum))
        const byAge = [...model].sort((a, b) => a.jobNum - b.jobNum).map((j) => j.jobNum)
        check(step, 'byAge', [...ready.byAge(false, undefined)].map((j) => j.jobNum), byAge)
        check(step, 'byAge, newest first', [...ready.byAge(true, undefined)].map((j) => j.jobNum), [...byAge].reverse())
        const skip = Math.floor(random() * (model.length + 1))
        const scanned: number[] = []
        ready.scanInOrder(undefined, skip, (job) => scanned.push(job.jobNum) < 20)
        check(step, 'scan', scanned, model.slice(skip, skip + 20).map((j) => j.jobNum))
        if (model.length > 0) {
          const after = pick(model)
          const fromAfter: number[] = []
          ready.scanInOrder(after, 0, (job) => fromAfter.push(job.jobNum) < 20)
          check(step, 'scan after a job', fromAfter, model.slice(model.indexOf(after) + 1, model.indexOf(after) + 21).map((j) => j.jobNum))
        }
      }
    }
    t.same(mismatches.slice(0, 5), [], `${priorities} distinct priorities`)
    t.equal(totals.jobs, model.length, 'the shared totals follow')
  }
  t.end()
})

t.test('lower priority number is served first; ties are strict FIFO', (t) => {
  const q = makeQueue()
  const specs = [
    [5, 'a'], [1, 'b'], [5, 'c'], [0, 'd'], [1, 'e'], [4294967295, 'f'], [0, 'g'], [5, 'h'],
  ] as const
  for (const [priority, message] of specs) q.schedule({ lane: 'main', priority, message })
  t.same(drainLane(q).map((j) => j.message), ['d', 'g', 'b', 'e', 'a', 'c', 'h', 'f'])
  t.equal(q.receive('main'), undefined)
  t.end()
})

t.test('FIFO holds for many jobs of one priority', (t) => {
  const q = makeQueue()
  for (let i = 0; i < 1000; i++) q.schedule({ lane: 'main', priority: 512, message: String(i) })
  t.same(drainLane(q).map((j) => Number(j.message)), Array.from({ length: 1000 }, (_, i) => i))
  t.end()
})

t.test('job numbers grow and hashes are 40 hex digits by default', (t) => {
  const q = new Queue()
  const a = q.schedule({ lane: 'main', priority: 1, message: 'x' })
  const b = q.schedule({ lane: 'other', priority: 1, message: 'y' })
  t.equal(b.jobNum, a.jobNum + 1)
  t.match(a.hash, /^[0-9a-f]{40}$/)
  t.not(a.hash, b.hash)
  t.end()
})

t.test('derived hashes: 40 hex digits, distinct for every job number, distinct per process', (t) => {
  const a = new HashScheme()
  const b = new HashScheme()
  const numbers = [...Array.from({ length: 100_000 }, (_, i) => i + 1), 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]
  const hashes = numbers.map((n) => a.hashOf(n))
  t.same(hashes.filter((h) => !/^[0-9a-f]{40}$/.test(h)), [], 'all are 40 hex digits')
  t.equal(new Set(hashes).size, numbers.length, 'no two job numbers share a hash')
  t.equal(a.hashOf(77), a.hashOf(77), 'stable within a process')
  t.not(a.hashOf(77), b.hashOf(77), 'different in another process')
  t.end()
})

t.test('a hash of this process leads back to its job number; anything else leads nowhere', (t) => {
  const scheme = new HashScheme()
  for (const n of [1, 2, 1000, 4294967295, 4294967296, 123456789012345, Number.MAX_SAFE_INTEGER]) t.equal(scheme.jobNumOf(scheme.hashOf(n)), n)
  const hash = scheme.hashOf(42)
  t.equal(scheme.jobNumOf(hash.toUpperCase()), undefined, 'upper case is another string')
  t.equal(scheme.jobNumOf(hash.slice(0, 39)), undefined)
  t.equal(scheme.jobNumOf(`${hash.slice(0, 39)}g`), undefined)
  t.equal(scheme.jobNumOf(new HashScheme().hashOf(42)), undefined, 'another process prefix')
  t.end()
})

t.test('leased jobs are found by the hash they were shown with: derived, or restored from a snapshot', (t) => {
  const q = new Queue({ clock: () => 1_700_000_000_000 })
  const restored = q.restore({ jobNum: 5, hash: 'ab'.repeat(20), lane: 'main', priority: 1, message: 'restored' })
  const fresh = q.schedule({ lane: 'main', priority: 2, message: 'fresh' })
  const first = q.receiveLeased('main', 60_000)!
  const second = q.receiveLeased('main', 60_000)!
  t.equal(first.job, restored)
  t.equal(second.job, fresh)
  // The derived hash of the restored job's number was never shown for it: it finds nothing.
  t.throws(() => q.touch(processHashes.hashOf(5), first.token), { code: 9 })
  t.equal(q.touch(restored.hash, first.token).job, restored)
  t.equal(q.ack(fresh.hash, second.token), fresh)
  t.throws(() => q.ack(fresh.hash, second.token), { code: 9 }, 'acked once only')
  t.equal(q.ack(restored.hash, first.token), restored)
  t.end()
})

t.test('lanes are separate and every lane a job was scheduled to is known; receives create none', (t) => {
  const q = makeQueue()
  q.schedule({ lane: 'video', priority: 1, message: 'v' })
  q.schedule({ lane: 'main', priority: 9, message: 'm' })
  t.equal(q.receive('email'), undefined)
  t.equal(q.receiveLeased('email', 1000), undefined)
  t.same(q.stats().queued, { main: 1, video: 1 })
  t.equal(q.receive('video')!.message, 'v')
  t.equal(q.receive('video'), undefined)
  t.equal(q.receive('main')!.message, 'm')
  t.same(q.laneNames(), ['main', 'video'])
  t.end()
})

t.test('restore keeps numbers and continues after the highest', (t) => {
  const q = makeQueue()
  q.restore({ jobNum: 7, hash: 'h7', created: 100, lane: 'main', priority: 3, message: 'seven' })
  q.restore({ jobNum: 3, lane: 'main', priority: 3, message: 'three' })
  t.equal(q.nextJobNum, 8)
  const next = q.schedule({ lane: 'main', priority: 3, message: 'eight' })
  t.equal(next.jobNum, 8)
  const served = drainLane(q)
  t.same(served.map((j) => j.jobNum), [3, 7, 8])
  t.equal(served[1]!.hash, 'h7')
  t.match(served[0]!.hash, /^[0-9a-f]{40}$/, 'a missing hash is made up')
  q.reserveJobNumsBelow(100)
  t.equal(q.schedule({ lane: 'main', priority: 1, message: 'x' }).jobNum, 100)
  t.end()
})

t.test('jobsInOrder lists serving order without consuming', (t) => {
  const q = makeQueue()
  q.schedule({ lane: 'main', priority: 9, message: 'c' })
  q.schedule({ lane: 'main', priority: 1, message: 'a' })
  q.schedule({ lane: 'main', priority: 5, message: 'b' })
  t.same(q.jobsInOrder('main').map((j) => j.message), ['a', 'b', 'c'])
  t.equal(q.totalQueued, 3)
  t.same(q.jobsInOrder('nope'), [])
  t.end()
})


t.test('a queue under leases, expiries, failed hand-overs, releases, deletes and moves between lanes and priorities (up to 4294967295) lists, pages, positions and serves as a model says, with each job its own time', (t) => {
  interface Model {
    lane: string
    priority: number
    created: number
    hash: string
    state: 'ready' | 'leased' | 'taken'
  }
  for (const [seed0, priorities, groups] of [[3, [0, 1, 4294967295], [undefined]], [5, [7], [undefined, 'g1', 'g2']]] as const) {
    let seed: number = seed0
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
    let now = 1_700_000_000_000
    const queue = new Queue({ clock: () => now })
    const lanes = ['a', 'b']
    const model = new Map<number, Model>()
    const leases: Held[] = []
    const taken: Job[] = []
    const wrong: string[] = []
    const inState = (state: Model['state']): [number, Model][] => [...model].filter(([, m]) => m.state === state)
    for (let step = 0; step < 1500 && wrong.length === 0; step++) {
      const r = random()
      if (r < 0.3) {
        const job = queue.schedule({ lane: pick(lanes), priority: pick(priorities), message: 'm', group: pick(groups) })
        model.set(job.jobNum, { lane: job.lane, priority: job.priority, created: Math.floor(now / 1000), hash: job.hash, state: 'ready' })
      } else if (r < 0.4) {
        const held = queue.receiveLeased(pick(lanes), 1000)
        if (held !== undefined) model.get(held.job.jobNum)!.state = 'leased'
        if (held !== undefined) leases.push(held)
      } else if (r < 0.45 && leases.length > 0) {
        const held = leases.splice(Math.floor(random() * leases.length), 1)[0]!
        queue.release(held.job.hash, held.token)
        model.get(held.job.jobNum)!.state = 'ready'
      } else if (r < 0.5) {
        const job = queue.receive(pick(lanes))
        if (job !== undefined) model.get(job.jobNum)!.state = 'taken'
        if (job !== undefined) taken.push(job)
      } else if (r < 0.55 && taken.length > 0) {
        // A failed hand-over: the job goes back to its place.
        const job = taken.splice(Math.floor(random() * taken.length), 1)[0]!
        queue.returnUndelivered(job, undefined)
        model.get(job.jobNum)!.state = 'ready'
      } else if (r < 0.65 && inState('ready').length > 0) {
        const [, m] = pick(inState('ready'))
        const lane = pick(lanes)
        const priority = random() < 0.5 ? m.priority : pick(priorities)
        queue.relocate(m.hash, lane, priority)
        Object.assign(m, { lane, priority })
      } else if (r < 0.72 && inState('ready').length > 0) {
        const [num, m] = pick(inState('ready'))
        queue.deleteJob(m.hash)
        model.delete(num)
      } else if (r < 0.8) {
        // Time passes: into another second, and leases run out (their jobs go back).
        now += Math.floor(random() * 800)
        const expired = queue.expireDue()
        for (const job of expired.leases) model.get(job.jobNum)!.state = 'ready'
        for (let i = leases.length - 1; i >= 0; i--) if (expired.leases.includes(leases[i]!.job)) leases.splice(i, 1)
      } else {
        const job = queue.receive(pick(lanes))
        if (job !== undefined && model.get(job.jobNum)?.state !== 'ready') wrong.push(`step ${step}: received ${job.jobNum}, which is not ready`)
        if (job !== undefined) model.delete(job.jobNum)
      }
      for (const [num, m] of model) {
        if (m.state === 'taken') continue
        const found = queue.findByNumber(num)
        const fields = found === undefined ? undefined : [found.job.lane, found.job.priority, found.job.created, found.state]
        if (JSON.stringify(fields) !== JSON.stringify([m.lane, m.priority, m.created, m.state === 'ready' ? 'queued' : 'leased'])) wrong.push(`step ${step}: job ${num} shows ${JSON.stringify(fields)}, expected ${JSON.stringify(m)}`)
      }
      if (step % 10 !== 0) continue
      for (const lane of lanes) {
        const ready = inState('ready').filter(([, m]) => m.lane === lane)
        const order = ready.sort(([a, x], [b, y]) => x.priority - y.priority || a - b).map(([num]) => num)
        const listed = queue.jobsInOrder(lane).map((job) => job.jobNum)
        // A grouped priority serves its groups in turn: the model knows only which jobs are there.
        if (JSON.stringify(groups.length > 1 ? [...listed].sort((a, b) => a - b) : listed) !== JSON.stringify(groups.length > 1 ? [...order].sort((a, b) => a - b) : order)) wrong.push(`step ${step}: lane ${lane} lists ${listed}, expected ${order}`)
        listed.forEach((num, i) => {
          if (queue.findByNumber(num)?.position !== i) wrong.push(`step ${step}: job ${num} at position ${queue.findByNumber(num)?.position}, listed at ${i}`)
        })
        for (const sort of ['order', 'oldest', 'newest'] as const) {
          const want = sort === 'order' ? listed : [...listed].sort((a, b) => (sort === 'oldest' ? a - b : b - a))
          const paged: number[] = []
          let cursor: string | undefined
          for (let pages = 0; pages < 1000; pages++) {
            const page = queue.page({ lane, state: 'ready', sort, offset: 0, cursor, limit: 3 })
            paged.push(...page.jobs.map((job) => job.jobNum))
            if (page.nextCursor === null) break
            cursor = page.nextCursor
          }
          if (JSON.stringify(paged) !== JSON.stringify(want)) wrong.push(`step ${step}: lane ${lane} pages by cursor, ${sort}: ${paged}, expected ${want}`)
          for (let offset = 0; offset <= want.length; offset += 2) {
            const got = queue.page({ lane, state: 'ready', sort, offset, limit: 2 }).jobs.map((job) => job.jobNum)
            if (JSON.stringify(got) !== JSON.stringify(want.slice(offset, offset + 2))) wrong.push(`step ${step}: lane ${lane} page at offset ${offset}, ${sort}: ${got}`)
          }
        }
      }
    }
    t.same(wrong.slice(0, 5), [], `priorities ${priorities.join(', ')}, groups ${groups.length > 1 ? 'g1, g2 and none' : 'none'}`)
  }
  t.end()
})
