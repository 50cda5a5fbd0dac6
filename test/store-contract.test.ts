import { randomBytes } from 'node:crypto'
import t from 'tap'
import { ApiError, type CodeName } from '../src/errors'
import { createLogger } from '../src/log'
import type { Held } from '../src/queue/held'
import { Job, type RunReport } from '../src/queue/job'
import type { UniqueHold } from '../src/queue/unique'
import { BackgroundTasks } from '../src/service/tasks'
import type { JobStore, Maybe, Taken } from '../src/store/job-store'
import { MemoryStore } from '../src/store/memory-store'
import { RedisStore } from '../src/store/redis/redis-store'
import { until } from './helpers/daemon'
import { type RedisCluster, masterOf, startCluster, startRedis } from './helpers/redis'

/**
 * One contract for every store, run against the in-memory store, a standalone redis-server and a
 * real 3-master Redis cluster (both started here on free loopback ports, ended by PID): what the
 * job service relies on, including exact order over the whole priority range, FIFO among equal
 * priorities, put-backs at their original place, leases and their expiry, delays, runner lanes'
 * runs, dead and finished jobs. The store is driven directly; the daemons over Redis are tested
 * in redis-frontends.test.ts.
 */

// Three backends with 100,000 jobs each: more than the default 120 s on a loaded 2-core machine.
t.setTimeout(600_000)

const logger = createLogger('silent')
const RUNNER = 'runner'
/** Lanes of the cases below (spread over the cluster's three masters: checked). */
const LANES = ['main', 'order', 'leases', 'delays', RUNNER, '__proto__', '{odd}%lane', 'büro', 'big', 'batch', 'together', 'ops']

interface Backend {
  store: JobStore
  /** Moves what is due (the daemon's reaper; a Redis take also does it itself). */
  expire(): Promise<void>
  close(): Promise<void>
}

function history(): { keepFinishedMs: (lane: string) => number; maxFinished: number } {
  return { keepFinishedMs: (lane) => (lane === RUNNER || lane === 'results' ? 60_000 : 0), maxFinished: 100 }
}

function memoryBackend(): Backend {
  const store = new MemoryStore({ logger, runnerLanes: [RUNNER], history: history() })
  return { store, expire: async () => void (await store.expireDue(Date.now())), close: () => store.close() }
}

async function redisBackend(target: { url: string } | { cluster: { host: string; port: number }[] }): Promise<Backend> {
  // A generous command timeout: the outage tests (redis-frontends) check the 1 s default; here a
  // loaded machine must not turn a slow answer into a failed case.
  const store = new RedisStore({ commandTimeoutMs: 10_000, target, prefix: `test-${randomBytes(4).toString('hex')}`, logger, history: history(), runnerLanes: new Map([[RUNNER, () => 2]]) })
  const tasks = new BackgroundTasks(logger)
  store.start(tasks)
  await until(() => (store.status().store as { state: string }).state === 'up', 'the Redis store to connect', 15_000)
  return {
    store,
    expire: async () => void (await store.expireDue()),
    close: async () => {
      tasks.stopAll()
      await store.close()
    },
  }
}

async function codeOfCall(call: () => Maybe<unknown>): Promise<CodeName | undefined> {
  try {
    await call()
  } catch (err) {
    if (err instanceof ApiError) return err.codeName
    throw err
  }
  return undefined
}

async function takeAll(store: JobStore, lane: string, n: number): Promise<Job[]> {
  const out: Job[] = []
  // 100 in flight: enough to keep Redis busy, few enough to stay far inside the 1 s command timeout on a loaded machine.
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => store.take(lane, undefined)))
    for (const taken of batch) if (taken !== undefined) out.push(taken.job)
  }
  return out
}

async function take(store: JobStore, lane: string, leaseMs?: number): Promise<Taken> {
  const taken = await store.take(lane, leaseMs)
  if (taken === undefined) throw new Error(`lane ${lane} had nothing ready`)
  return taken
}

const report = (state: RunReport['state']): RunReport => ({ state, startedAt: 1_700_000_000, finishedAt: 1_700_000_001, durationMs: 1000, reason: state === 'succeeded' ? null : 'exit 3', exitCode: state === 'succeeded' ? 0 : 3, httpStatus: null, output: 'out|put ü' })

function contract(name: string, open: () => Promise<Backend>): void {
  t.test(name, async (t) => {
    const backend = await open()
    const { store } = backend
    t.teardown(() => backend.close())

    t.test('a batch gets consecutive job numbers and distinct hashes; messages come back byte for byte', async (t) => {
      const message = 'a|b||c ü€𝄞 "quoted" \\ \n'
      const jobs = await store.schedule([
        { lane: 'main', priority: 7, message },
        { lane: 'main', priority: 7, message: '' },
        { lane: 'büro', priority: 1, message: 'x' },
      ])
      t.same(jobs.map((j) => j.jobNum), [jobs[0]!.jobNum, jobs[0]!.jobNum + 1, jobs[0]!.jobNum + 2])
      t.equal(new Set(jobs.map((j) => j.hash)).size, 3)
      for (const job of jobs) t.match(job.hash, /^[0-9a-f]{40}$/)
      const first = await take(store, 'main')
      t.equal(first.job.message, message)
      t.equal(first.job.jobNum, jobs[0]!.jobNum)
      t.equal(first.job.hash, jobs[0]!.hash)
      t.equal((await take(store, 'main')).job.message, '')
      t.equal((await take(store, 'büro')).job.lane, 'büro')
      t.equal(await store.take('main', undefined), undefined, 'empty lane')
      t.equal(await store.take('never-scheduled', undefined), undefined, 'unknown lane')
    })

    t.test('exact order over the whole priority range, FIFO among equal priorities', async (t) => {
      const priorities = [4294967295, 0, 512, 4294967294, 0, 1, 4294967295, 2147483648, 512, 0]
      const jobs = await store.schedule(priorities.map((priority, i) => ({ lane: 'order', priority, message: `m${i}` })))
      const expected = jobs.map((job, i) => ({ job, i })).sort((a, b) => a.job.priority - b.job.priority || a.i - b.i).map(({ job }) => job.message)
      t.same((await takeAll(store, 'order', jobs.length)).map((j) => j.message), expected)
    })

    t.test('a lane named __proto__ or with braces and percent signs is a lane like any other', async (t) => {
      for (const lane of ['__proto__', '{odd}%lane']) {
        const [job] = await store.schedule([{ lane, priority: 1, message: lane }])
        const counts = await until(() => (store.counts().queued[lane] ?? 0) === 1, `the count of ${lane}`, 5000).then(() => store.counts())
        t.equal(counts.queued[lane], 1)
        t.equal((await take(store, lane)).job.hash, job!.hash)
      }
    })

    t.test('leases: ack needs the lease token, ends the job; an expired lease returns the job to its place', async (t) => {
      const [a, b, c] = await store.schedule(['a', 'b', 'c'].map((message) => ({ lane: 'leases', priority: 5, message })))
      const leased = await take(store, 'leases', 60_000)
      t.equal(leased.job.hash, a!.hash)
      const lease = leased.lease!
      t.ok(lease.token.length > 0)
      t.ok(lease.at > Date.now() + 50_000, 'the deadline is the lease length away')
      t.equal(await codeOfCall(() => store.ack(a!.hash, 'not-the-token')), 'not_leased')
      t.equal(await codeOfCall(() => store.ack(b!.hash, lease.token)), 'not_leased', 'a job not leased')
      t.equal((await store.ack(a!.hash, lease.token)).jobNum, a!.jobNum)
      t.equal(await codeOfCall(() => store.ack(a!.hash, lease.token)), 'not_leased', 'acked twice')

      const short = await take(store, 'leases', 150)
      t.equal(short.job.hash, b!.hash)
      await new Promise((r) => setTimeout(r, 250))
      await backend.expire()
      t.equal(await codeOfCall(() => store.ack(b!.hash, short.lease!.token)), 'not_leased', 'ack after the deadline')
      const again = await take(store, 'leases', 60_000)
      t.equal(again.job.hash, b!.hash, 'back ahead of c: its original place')
      t.not(again.lease!.token, short.lease!.token)
      t.equal(await codeOfCall(() => store.release(b!.hash, short.lease!.token, 0)), 'not_leased', 'the old token names an ended lease')
      await store.release(b!.hash, again.lease!.token, 0)
      t.same((await takeAll(store, 'leases', 2)).map((j) => j.hash), [b!.hash, c!.hash], 'released to its place')
    })

    t.test('touch extends a lease; release with a delay holds the job back', async (t) => {
      const [job] = await store.schedule([{ lane: 'leases', priority: 1, message: 'touch' }])
      const { lease } = await take(store, 'leases', 200)
      const touched = await store.touch(job!.hash, lease!.token, 5000)
      t.ok(touched.at > Date.now() + 4000)
      await new Promise((r) => setTimeout(r, 300))
      await backend.expire()
      t.equal(await store.take('leases', undefined), undefined, 'still leased past its first deadline')
      const released = await store.release(job!.hash, lease!.token, 300)
      t.ok(released.notBefore > Date.now(), 'not_before is set')
      t.equal(await store.take('leases', undefined), undefined, 'held back')
      const found = await store.find(job!.hash)
      t.equal(found?.state, 'delayed')
      await until(async () => {
        await backend.expire()
        return (await store.take('leases', undefined)) !== undefined
      }, 'the delay to end', 5000)
    })

    t.test('a schedule with a delay is held back, then served', async (t) => {
      const [job] = await store.schedule([{ lane: 'delays', priority: 1, message: 'later', delayMs: 300 }])
      t.ok(job!.notBefore > Date.now())
      t.equal(await store.take('delays', undefined), undefined)
      await until(async () => {
        await backend.expire()
        const taken = await store.take('delays', undefined)
        return taken?.job.hash === job!.hash
      }, 'the delayed job', 5000)
    })

    t.test('a hand-over that failed goes back to its place; a lease only while it is the latest', async (t) => {
      const [a, b] = await store.schedule(['a', 'b'].map((message) => ({ lane: 'main', priority: 3, message })))
      const plain = await take(store, 'main')
      t.equal(await store.returnUndelivered(plain), true)
      const leased = await take(store, 'main', 60_000)
      t.equal(leased.job.hash, a!.hash, 'the put-back job is first again')
      t.equal(await store.returnUndelivered(leased), true)
      const again = await take(store, 'main', 60_000)
      t.equal(again.job.hash, a!.hash)
      await store.ack(a!.hash, again.lease!.token)
      t.equal(await store.returnUndelivered(leased), false, 'an ended lease is not put back')
      t.equal((await take(store, 'main')).job.hash, b!.hash)
    })

    t.test('runner lanes: runs end succeeded (kept for inspection), retried, or dead; dead jobs retried and deleted', async (t) => {
      const [ok, retried, dead] = await store.schedule(['ok', 'retry', 'dead'].map((message) => ({ lane: RUNNER, priority: 1, message })))
      t.equal((await store.find(ok!.hash))?.state, 'queued')
      const run1 = await take(store, RUNNER, 60_000)
      t.equal(run1.job.hash, ok!.hash)
      t.equal((await store.find(ok!.hash))?.state, 'running')
      t.equal(await codeOfCall(() => store.ack(ok!.hash, 'x')), 'conflict', 'a consumer cannot ack a run')
      t.equal(await codeOfCall(() => store.delete(ok!.hash)), 'conflict', 'a running job cannot be deleted')
      run1.job.attempts = 1
      await store.complete(run1.lease!, report('succeeded'))
      const finished = await store.find(ok!.hash)
      t.equal(finished?.state, 'succeeded')
      t.equal(finished?.job.report?.output, 'out|put ü')
      t.equal(await codeOfCall(() => store.complete(run1.lease!, report('succeeded'))), 'not_leased', 'a run ends once')

      const run2 = await take(store, RUNNER, 60_000)
      t.equal(run2.job.hash, retried!.hash)
      run2.job.attempts = 1
      run2.job.report = report('failed')
      await store.retryLater(run2.lease!, 200)
      t.equal((await store.find(retried!.hash))?.state, 'delayed')

      const run3 = await take(store, RUNNER, 60_000)
      t.equal(run3.job.hash, dead!.hash)
      run3.job.attempts = 3
      await store.bury(run3.lease!, report('dead'))
      const deadOnes = await store.deadJobs(RUNNER, 0, 10)
      t.equal(deadOnes.total, 1)
      t.equal(deadOnes.jobs[0]!.hash, dead!.hash)
      t.equal(deadOnes.jobs[0]!.attempts, 3)
      t.equal(deadOnes.jobs[0]!.report?.state, 'dead')
      t.equal((await store.find(dead!.hash))?.state, 'dead')
      t.ok((await until(() => store.usage().dead === 1, 'the dead count', 5000).then(() => true)), 'dead jobs count in usage')

      const back = await store.retryDead(dead!.hash)
      t.equal(back.attempts, 0)
      t.equal(await codeOfCall(() => store.retryDead(dead!.hash)), 'job_not_found', 'not dead any more')
      t.equal((await store.find(dead!.hash))?.state, 'queued')
      await until(async () => {
        await backend.expire()
        return (await store.find(retried!.hash))?.state === 'queued'
      }, 'the retry delay to end', 5000)
      const run4 = await take(store, RUNNER, 60_000)
      t.equal(run4.job.hash, retried!.hash, 'retried before the job queued again after it')
      t.equal(run4.job.attempts, 1, 'attempts kept across the retry')
      run4.job.attempts = 2
      await store.bury(run4.lease!, report('dead'))
      t.equal((await store.delete(retried!.hash)).hash, retried!.hash)
      t.equal(await store.find(retried!.hash), undefined)
      t.equal((await store.delete(dead!.hash)).hash, dead!.hash, 'a queued job of a runner lane is deleted from the middle')
      t.equal(await store.take(RUNNER, 60_000), undefined)
    })

    t.test('batches: up to count jobs in serving order, each under its own lease; readyCount follows', async (t) => {
      await store.schedule([3, 1, 2].map((priority) => ({ lane: 'batch', priority, message: `p${priority}` })))
      await until(() => store.readyCount('batch') === 3, 'the ready count', 5000)
      const leased = await store.takeMany('batch', 60_000, 2)
      t.same(leased.map((x) => x.job.message), ['p1', 'p2'])
      t.not(leased[0]!.lease!.token, leased[1]!.lease!.token, 'each job its own lease')
      for (const { job, lease } of leased) t.equal((await store.ack(job.hash, lease!.token)).hash, job.hash)
      t.same((await store.takeMany('batch', undefined, 10)).map((x) => x.job.message), ['p3'])
      t.same(await store.takeMany('batch', undefined, 10), [])
    })

    t.test('unique keys: held while the job is queued or out and forMs after it is finished, checked within one call too', async (t) => {
      const k1 = { key: 'k1', forMs: 60_000 }
      const k2 = { key: 'k2', forMs: 0 }
      const [a, b, c] = await store.scheduleUnique([
        { lane: 'uniq', priority: 1, message: 'a', unique: k1 },
        { lane: 'uniq', priority: 1, message: 'b', unique: k1 },
        { lane: 'uniq', priority: 1, message: 'c', unique: k2 },
      ])
      t.ok(a instanceof Job && c instanceof Job, 'a and c are queued')
      const held = b as UniqueHold
      t.notOk(b instanceof Job, 'b is not')
      t.same([held.hash, held.jobNum, held.active, held.key, held.lane], [a!.hash, a!.jobNum, true, 'k1', 'uniq'], 'b names a, still queued')
      t.equal((await take(store, 'uniq')).job.hash, a!.hash)
      t.equal((await take(store, 'uniq')).job.hash, c!.hash)
      const [again1, again2] = await store.scheduleUnique([
        { lane: 'uniq', priority: 1, message: 'a', unique: k1 },
        // Delayed: the in-memory store deletes a consumer lane's job by hash while it is delayed.
        { lane: 'uniq', priority: 1, message: 'c', unique: k2, delayMs: 60_000 },
      ])
      const finished = again1 as UniqueHold
      t.notOk(again1 instanceof Job, 'k1 held after a was taken for good')
      t.ok(!finished.active && finished.until > Date.now() + 50_000, 'for its forMs')
      t.ok(again2 instanceof Job, 'k2 (forMs 0) free once c was taken')
      const [other] = await store.scheduleUnique([{ lane: 'uniq2', priority: 1, message: 'a', unique: k1 }])
      t.ok(other instanceof Job, 'keys are per lane')
      await store.delete(again2!.hash)
      const [afterDelete] = await store.scheduleUnique([{ lane: 'uniq', priority: 1, message: 'c', unique: { key: 'k2', forMs: 60_000 } }])
      t.ok(afterDelete instanceof Job, 'deleting a delayed job frees its key')
      const leased = await take(store, 'uniq', 30_000)
      t.notOk((await store.scheduleUnique([{ lane: 'uniq', priority: 1, message: 'c', unique: k2 }]))[0] instanceof Job, 'held while leased')
      await store.release(leased.job.hash, leased.lease!.token, 0)
      t.notOk((await store.scheduleUnique([{ lane: 'uniq', priority: 1, message: 'c', unique: k2 }]))[0] instanceof Job, 'and once released (queued again)')
      const relet = await take(store, 'uniq', 30_000)
      await store.ack(relet.job.hash, relet.lease!.token)
      const [acked] = await store.scheduleUnique([{ lane: 'uniq', priority: 1, message: 'c', unique: k2 }])
      t.notOk(acked instanceof Job, 'and forMs after the ack')
      t.equal((acked as UniqueHold).hash, relet.job.hash)
    })

    t.test('a job taken for good whose hand-over failed comes back holding its key', async (t) => {
      const [job] = await store.scheduleUnique([{ lane: 'uniq3', priority: 1, message: 'x', unique: { key: 'r', forMs: 0 } }])
      const taken = await take(store, 'uniq3')
      t.ok((await store.scheduleUnique([{ lane: 'uniq3', priority: 1, message: 'y', unique: { key: 'r', forMs: 0 } }]))[0] instanceof Job, 'taken (forMs 0): the key is free')
      t.equal((await take(store, 'uniq3')).job.message, 'y', 'y is taken too: the key is free again')
      t.ok(await store.returnUndelivered(taken), 'put back')
      const [again] = await store.scheduleUnique([{ lane: 'uniq3', priority: 1, message: 'z', unique: { key: 'r', forMs: 0 } }])
      t.notOk(again instanceof Job, 'back in its lane, it holds its key again')
      t.equal((again as UniqueHold).hash, job!.hash)
    })

    t.test('a job acked with a result is kept as succeeded, with it, for its lane\'s keep time', async (t) => {
      const [job] = await store.schedule([{ lane: 'results', priority: 1, message: 'r' }])
      const leased = await take(store, 'results', 30_000)
      await store.ack(job!.hash, leased.lease!.token, '{"n":[1,"ü"]}')
      const found = await store.find(job!.hash)
      t.equal(found?.state, 'succeeded')
      t.equal(found?.job.result, '{"n":[1,"ü"]}')
      const [plain] = await store.schedule([{ lane: 'results', priority: 1, message: 'p' }])
      const out = await take(store, 'results', 30_000)
      await store.ack(plain!.hash, out.lease!.token)
      t.equal(await store.find(plain!.hash), undefined, 'acked without a result: gone')
    })

    t.test('a shared store keeps the end of a watched job for the process that waits', async (t) => {
      if (store.waitedEnd === undefined) return t.pass('the in-memory store tells its own events')
      const [job] = await store.scheduleUnique([{ lane: 'watched', priority: 1, message: 'w', watchMs: 60_000 }])
      t.equal(await store.waitedEnd(job!.hash), undefined, 'not ended yet')
      const leased = await take(store, 'watched', 30_000)
      await store.ack(job!.hash, leased.lease!.token, '"done"')
      const end = await store.waitedEnd(job!.hash)
      t.equal(end?.state, 'succeeded')
      t.equal(end?.job.result, '"done"')
      t.equal(end?.job.hash, job!.hash)
      store.unwatch!(job!.hash)
      await until(async () => (await store.waitedEnd!(job!.hash)) === undefined, 'the end to be forgotten once nobody waits')
      const [unwatched] = await store.schedule([{ lane: 'watched', priority: 1, message: 'u' }])
      await take(store, 'watched')
      t.equal(await store.waitedEnd(unwatched!.hash), undefined, 'a job nobody waits for leaves no end behind')
    })

    t.test('concurrent calls (coalesced by the Redis store): each caller its own jobs, numbers, leases and answers, in order', async (t) => {
      // 32 schedules at once, as 32 clients' requests arrive in one turn; one of them a batch.
      const calls = Array.from({ length: 32 }, (_, i) =>
        store.schedule(i === 7 ? [{ lane: 'together', priority: 1, message: 'b0' }, { lane: 'together', priority: 0, message: 'b1' }] : [{ lane: 'together', priority: i % 3, message: `s${i}` }]),
      )
      const scheduled = (await Promise.all(calls)).flat()
      const numbers = scheduled.map((j) => j.jobNum)
      t.same(numbers, [...numbers].sort((a, b) => a - b), 'job numbers in the order the calls were made')
      t.equal(new Set(numbers).size, 33)
      t.equal(new Set(scheduled.map((j) => j.hash)).size, 33)
      const order = [...scheduled].sort((a, b) => a.priority - b.priority || a.jobNum - b.jobNum).map((j) => j.hash)

      // 40 leased takes at once for 33 jobs: the first 33 callers get them in serving order, each its own lease.
      const taken = await Promise.all(Array.from({ length: 40 }, () => store.take('together', 60_000)))
      t.same(taken.slice(0, 33).map((x) => x?.job.hash), order, 'served in (priority, job number) order, to the callers in the order they asked')
      t.same(taken.slice(33), new Array(7).fill(undefined), 'the callers past the last job get none')
      const leased = taken.slice(0, 33).map((x) => x!)
      t.equal(new Set(leased.map((x) => x.lease!.token)).size, 33, 'each take its own lease token')

      // Acks at once, some wrong: each answered on its own.
      const acks = await Promise.all(leased.map(({ job, lease }, i) => codeOfCall(() => store.ack(job.hash, i % 4 === 0 ? `${lease!.token}-wrong` : lease!.token))))
      t.same(acks, leased.map((_, i) => (i % 4 === 0 ? 'not_leased' : undefined)))
      t.same(await Promise.all([1, 2].map((i) => codeOfCall(() => store.ack(leased[i]!.job.hash, leased[i]!.lease!.token)))), ['not_leased', 'not_leased'], 'an acked lease stays acked')
      const left = leased.filter((_, i) => i % 4 === 0)
      const same = await Promise.all(left.flatMap(({ job, lease }) => [codeOfCall(() => store.ack(job.hash, lease!.token)), codeOfCall(() => store.ack(job.hash, lease!.token))]))
      t.same(same, left.flatMap(() => [undefined, 'not_leased']), 'two acks of one lease in one turn: the first ends it')
      t.equal(await store.take('together', undefined), undefined)
    })

    t.test('hashes nobody made are refused', async (t) => {
      for (const hash of ['0'.repeat(40), 'nothex', randomBytes(20).toString('hex')]) {
        t.equal(await codeOfCall(() => store.ack(hash, 't')), 'not_leased')
        t.equal(await codeOfCall(() => store.retryDead(hash)), 'job_not_found')
        t.equal(await codeOfCall(() => store.delete(hash)), 'job_not_found')
        t.equal(await store.find(hash), undefined)
      }
    })

    t.test('counts and usage follow the jobs', async (t) => {
      await store.schedule([1, 2, 3].map((i) => ({ lane: 'delays', priority: i, message: 'xx' })))
      await store.schedule([{ lane: 'delays', priority: 1, message: 'later', delayMs: 60_000 }])
      const lease = await take(store, 'delays', 60_000)
      await until(() => store.counts().queued.delays === 2 && store.counts().leased.delays === 1 && store.counts().delayed.delays === 1, 'the counts', 5000)
      t.ok(store.laneNames().includes('delays'))
      t.ok(store.hasLane('delays'))
      const before = store.usage()
      await store.ack(lease.job.hash, lease.lease!.token)
      await until(() => store.usage().jobs === before.jobs - 1, 'usage to drop by the acked job', 5000)
      await takeAll(store, 'delays', 2)
    })

    t.test('a paused lane is listed as paused; a shared store refuses its takes itself', async (t) => {
      await store.schedule([1, 2].map((priority) => ({ lane: 'ops', priority, message: `p${priority}` })))
      await store.setPaused('ops', true)
      t.ok(store.pausedLanes().has('ops'))
      // In memory the job service holds a paused lane back; a store shared by processes must, in the take.
      if (!store.answersAtOnce) {
        t.equal(await store.take('ops', undefined), undefined, 'no take while paused')
        t.same(await store.takeMany('ops', 60_000, 5), [], 'no batch either')
      }
      await store.setPaused('ops', false)
      t.notOk(store.pausedLanes().has('ops'))
      t.same((await takeAll(store, 'ops', 2)).map((j) => j.message), ['p1', 'p2'])
    })

    t.test('finds by number with the position; pages walk in serving order past a cursor whose job was taken', async (t) => {
      const jobs = await store.schedule([5, 1, 3, 1, 9, 0].map((priority, i) => ({ lane: 'ops', priority, message: `o${i}${i % 2 === 0 ? ' even' : ''}` })))
      const order = ['o5', 'o1', 'o3', 'o2 even', 'o0 even', 'o4 even']
      const found = await store.findByNumber(jobs[2]!.jobNum)
      t.match(found, { job: { hash: jobs[2]!.hash, message: 'o2 even' }, state: 'queued', position: 3 })
      t.equal(await store.findByNumber(jobs[5]!.jobNum + 1_000_000), undefined)
      const query = { lane: 'ops', state: 'ready', sort: 'order', offset: 0, limit: 2 } as const
      const first = await store.page(query)
      t.same([first.total, first.jobs.map((j) => j.message)], [6, order.slice(0, 2)])
      t.not(first.nextCursor, null)
      t.same((await takeAll(store, 'ops', 2)).map((j) => j.message), order.slice(0, 2), 'the cursor\'s job is taken meanwhile')
      const second = await store.page({ ...query, cursor: first.nextCursor! })
      t.same(second.jobs.map((j) => j.message), order.slice(2, 4))
      t.same((await store.page({ ...query, offset: 1, limit: 10, q: 'even' })).jobs.map((j) => j.message), ['o0 even', 'o4 even'], 'a search, past one match')
      const leased = await take(store, 'ops', 60_000)
      t.same((await store.page({ ...query, state: 'leased' })).jobs.map((j) => j.hash), [leased.job.hash])
      t.match(await store.findByNumber(leased.job.jobNum), { state: 'leased' })
      await store.ack(leased.job.hash, leased.lease!.token)
      t.equal(await store.findByNumber(leased.job.jobNum), undefined, 'acked: not found by number either')
      await takeAll(store, 'ops', 3)
    })

    t.test('a job moved to another priority in its lane is served at its new place', async (t) => {
      const [a, b] = await store.schedule([5, 6].map((priority, i) => ({ lane: 'ops', priority, message: `m${i}` })))
      const moved = await store.relocate(b!.hash, 'ops', 1)
      t.same([moved.hash, moved.priority, moved.lane], [b!.hash, 1, 'ops'])
      t.same((await takeAll(store, 'ops', 2)).map((j) => j.hash), [b!.hash, a!.hash])
      t.equal(await codeOfCall(() => store.relocate(a!.hash, 'ops', 1)), 'job_not_found', 'taken for good: gone')
    })

    t.test('ready jobs are listed in serving order', async (t) => {
      const jobs = await store.schedule([3, 1, 2, 1].map((priority, i) => ({ lane: 'big', priority, message: `l${i}` })))
      const lanes = await store.readyJobs()
      const big = lanes.find((l) => l.lane === 'big')!
      t.same(big.parts.flat().map((j) => j.message), ['l1', 'l3', 'l2', 'l0'])
      t.equal(big.count, jobs.length)
      await takeAll(store, 'big', jobs.length)
    })

    t.test('100,000 jobs with random 32-bit priorities come out in exact (priority, arrival) order', async (t) => {
      const n = 100_000
      const priorities = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? [0, 1, 2, 512, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1][i % 7]! : Math.floor(Math.random() * 2 ** 32)))
      for (let i = 0; i < n; i += 1000) {
        await store.schedule(priorities.slice(i, i + 1000).map((priority, k) => ({ lane: 'big', priority, message: String(i + k) })))
      }
      const expected = priorities.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => String(i))
      const got = (await takeAll(store, 'big', n)).map((j) => j.message)
      let mismatches = 0
      for (let i = 0; i < n; i++) if (got[i] !== expected[i]) mismatches++
      t.equal(got.length, n)
      t.equal(mismatches, 0, 'every job in its place')
    })
  })
}

contract('memory store', async () => memoryBackend())

let standalone: Awaited<ReturnType<typeof startRedis>> | undefined
let cluster: RedisCluster | undefined
t.teardown(async () => {
  await standalone?.stop()
  await cluster?.stop()
})

contract('Redis store, standalone redis-server', async () => {
  standalone = await startRedis()
  return redisBackend({ url: standalone.url })
})

contract('Redis store, 3-master cluster', async () => {
  cluster = await startCluster(3)
  const masters = new Set<number>()
  for (const lane of LANES) masters.add(await masterOf(cluster, `{${lane.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}}`))
  if (masters.size !== 3) throw new Error(`the lanes land on ${masters.size} masters, not 3: choose other names`)
  return redisBackend({ cluster: cluster.addresses.map((a) => ({ host: '127.0.0.1', port: Number(a.split(':')[1]) })) })
})

export type { Held }
