import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { SnapshotStore } from '../src/persist/store'
import { HashScheme, processHashes } from '../src/queue/hash'
import type { Job } from '../src/queue/job'
import { Queue } from '../src/queue/queue'
import { call, removeDir, runToExit, startDaemon, tempDir } from './helpers/daemon'

const logger = pino({ level: 'silent' })

/** A queue.json of `jobs` on lane main, as dispenserd writes it (one job per line). */
function writeQueueFile(dir: string, jobs: { jobNum: number; hash: string }[]): void {
  const lines = jobs.map(({ jobNum, hash }) => `{"job_num":${jobNum},"hash":"${hash}","timestamp":"2026-11-30T20:55:01Z","lane":"main","priority":512,"message":"m${jobNum}"}`)
  writeFileSync(path.join(dir, 'queue.json'), `{\n"main": [\n${lines.join(',\n')}\n]\n}\n`)
}

function drain(queue: Queue): Job[] {
  const out: Job[] = []
  for (let job = queue.receive('main'); job !== undefined; job = queue.receive('main')) out.push(job)
  return out
}

t.test('hashes an earlier process derived are restored as its scheme, the rest as strings; every hash stays as it was', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const earlier = new HashScheme()
  const saved = [
    { jobNum: 1, hash: earlier.hashOf(1) },
    { jobNum: 2, hash: earlier.hashOf(2) },
    // Not derived from its own number (the original daemon's, or another number's): kept as it is.
    { jobNum: 3, hash: 'ab'.repeat(20) },
    { jobNum: 4, hash: earlier.hashOf(7) },
  ]
  writeQueueFile(dir, saved)
  writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ next_job_num: 8, hash_keys: [earlier.key] }))

  const queue = new Queue()
  new SnapshotStore(dir, logger).load(queue)
  const leased = queue.receiveLeased('main', 60_000)!
  t.equal(leased.job.hash, saved[0]!.hash)
  t.equal(leased.job.hasStoredHash, false, 'job 1 keeps no hash string: the earlier scheme derives it')
  t.throws(() => queue.touch(processHashes.hashOf(1), leased.token), { code: 9 }, "this process's hash of number 1 is not job 1's")
  t.equal(queue.ack(saved[0]!.hash, leased.token), leased.job, 'found by its hash for the ack')
  t.equal(queue.findJob(saved[1]!.hash)?.job.jobNum, 2, 'a ready job is found by its saved hash')
  t.equal(queue.findJob(earlier.hashOf(3)), undefined, 'a hash the earlier scheme would give job 3 finds nothing: job 3 has another')

  await new SnapshotStore(dir, logger).save(queue, 'test')
  const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as { hash_keys: string[] }
  t.same(state.hash_keys, [processHashes.key, earlier.key], "this process's key, then the earlier one its jobs still use")
  const jobs = drain(queue)
  t.same(
    jobs.map((job) => [job.jobNum, job.hash, job.hasStoredHash]),
    [
      [2, saved[1]!.hash, false],
      [3, saved[2]!.hash, true],
      [4, saved[3]!.hash, true],
    ],
  )

  // The file saved above loads the same way again.
  const again = new Queue()
  new SnapshotStore(dir, logger).load(again)
  t.same(
    drain(again).map((job) => [job.jobNum, job.hash, job.hasStoredHash]),
    [
      [2, saved[1]!.hash, false],
      [3, saved[2]!.hash, true],
      [4, saved[3]!.hash, true],
    ],
  )
})

t.test('without hash_keys (an older state.json) every hash is kept as a string, unchanged', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const stranger = new HashScheme()
  const saved = [1, 2, 3].map((jobNum) => ({ jobNum, hash: stranger.hashOf(jobNum) }))
  writeQueueFile(dir, saved)
  writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ next_job_num: 4 }))
  const queue = new Queue()
  new SnapshotStore(dir, logger).load(queue)
  t.same(
    drain(queue).map((job) => [job.hash, job.hasStoredHash]),
    saved.map(({ hash }) => [hash, true]),
  )
})

t.test('a daemon restarted keeps every hash; a key no restored job uses is dropped at the next restart', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const stateKeys = (): string[] => (JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as { hash_keys: string[] }).hash_keys

  const first = await startDaemon({ dataDir: dir })
  const a = (await call(`${first.url}/schedule`, { message: 'a' })).body.hash as string
  const b = (await call(`${first.url}/schedule`, { message: 'b' })).body.hash as string
  await first.stop()
  const [firstKey] = stateKeys()

  const second = await startDaemon({ dataDir: dir })
  const taken = await call(`${second.url}/receive_noblock`, { lease: 60 })
  t.same([taken.body.hash, taken.body.message], [a, 'a'], 'served with the hash it was scheduled with')
  t.equal((await call(`${second.url}/ack`, { hash: a, lease_token: taken.body.lease_token })).status, 200, 'acked by that hash')
  t.equal((await call(`${second.url}/job?hash=${b}`)).body.job_num, 2, 'found by its hash')
  const c = (await call(`${second.url}/schedule`, { message: 'c' })).body.hash as string
  await second.stop()
  const keys = stateKeys()
  t.equal(keys.length, 2)
  t.equal(keys[1], firstKey, "the first process's key is kept while its job b is queued")

  const third = await startDaemon({ dataDir: dir })
  t.equal((await call(`${third.url}/delete`, { hash: b })).status, 200, 'b deleted by its hash')
  const left = await call(`${third.url}/receive_noblock`)
  t.same([left.body.hash, left.body.message], [c, 'c'])
  await third.stop()
  t.ok(stateKeys().includes(firstKey!), 'the third process loaded a job of the first: it saves its key too')
  const fourth = await startDaemon({ dataDir: dir })
  await fourth.stop()
  t.notOk(stateKeys().includes(firstKey!), 'a restart that finds no job of the first process saves its key no more')
})

t.test('restored jobs leased in one batch (held as one lease run) are found by their hashes for batch ack, touch and release', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const first = await startDaemon({ dataDir: dir })
  const hashes: string[] = []
  for (const message of ['a', 'b', 'c', 'd']) hashes.push((await call(`${first.url}/schedule`, { message })).body.hash as string)
  await first.stop()

  const second = await startDaemon({ dataDir: dir })
  t.teardown(() => second.stop())
  // A job of this process between the restored ones' turns.
  const fresh = (await call(`${second.url}/schedule`, { message: 'e' })).body.hash as string
  const batch = await call(`${second.url}/receive_noblock`, { count: 5, lease: 60 })
  const jobs = batch.body.jobs as { hash: string; lease_token: string; message: string }[]
  t.same(jobs.map((job) => [job.hash, job.message]), [...hashes.map((hash, i) => [hash, 'abcd'[i]]), [fresh, 'e']], 'each served with the hash it was scheduled with')
  const touched = await call(`${second.url}/touch`, { hash: jobs[1]!.hash, lease_token: jobs[1]!.lease_token, lease: 120 })
  t.equal(touched.status, 200, 'touched by its hash')
  const released = await call(`${second.url}/release`, { hash: jobs[2]!.hash, lease_token: jobs[2]!.lease_token })
  t.equal(released.status, 200, 'released by its hash')
  const acks = await call(`${second.url}/ack`, { leases: [jobs[0], jobs[1], jobs[3], jobs[4]].map((job) => ({ hash: job!.hash, lease_token: job!.lease_token })) })
  t.same(
    (acks.body.results as { code: number; hash: string }[]).map((r) => [r.code, r.hash]),
    [jobs[0], jobs[1], jobs[3], jobs[4]].map((job) => [0, job!.hash]),
    'every lease acked by its hash',
  )
  const again = await call(`${second.url}/receive_noblock`)
  t.same([again.body.hash, again.body.message], [hashes[2], 'c'], 'the released job comes back with its hash')
})

t.test('a malformed hash_keys stops the start, naming the file and the setting', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const file = path.join(dir, 'state.json')
  for (const keys of ['"abc"', '["xyz"]', '[42]']) {
    writeFileSync(file, `{"next_job_num": 3, "hash_keys": ${keys}}`)
    const r = await runToExit(['--address', '127.0.0.1:0', '--data-dir', dir])
    t.equal(r.code, 1, `refused: ${keys}`)
    t.match(r.stderr, file)
    t.match(r.stderr, /"hash_keys" must be an array of 56-digit lowercase hex keys/)
  }
})

t.test('a state.json naming two keys with one prefix (hand-edited) leaves every job found by its hash', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const entropy = randomBytes(28)
  const first = new HashScheme(entropy)
  // The same 96-bit prefix, another permutation: the two cannot tell their hashes apart by prefix.
  const second = new HashScheme(Buffer.concat([entropy.subarray(0, 12), randomBytes(16)]))
  const saved = [1, 2].map((jobNum) => ({ jobNum, hash: second.hashOf(jobNum) }))
  writeQueueFile(dir, saved)
  writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ next_job_num: 3, hash_keys: [first.key, second.key] }))

  const queue = new Queue()
  new SnapshotStore(dir, logger).load(queue)
  t.equal(queue.findJob(saved[1]!.hash)?.job.jobNum, 2, 'a ready job is found by its saved hash')
  const leased = queue.receiveLeased('main', 60_000)!
  t.equal(leased.job.hash, saved[0]!.hash)
  t.equal(queue.findJob(saved[0]!.hash)?.state, 'leased', 'a leased job is found by its saved hash')
  t.equal(queue.ack(saved[0]!.hash, leased.token), leased.job, 'and acked by it')
})

t.test('a line of queue.json is checked against one scheme at most, however many keys state.json names', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  // Keys pile up over restarts while each process leaves a dead job behind; loading must not slow down with them.
  const schemes = Array.from({ length: 500 }, () => new HashScheme())
  const last = schemes.at(-1)!
  const saved = [
    ...[1, 2, 3].map((jobNum) => ({ jobNum, hash: last.hashOf(jobNum) })),
    // The original daemon's hashes: no scheme derives them.
    ...[4, 5, 6].map((jobNum) => ({ jobNum, hash: `${jobNum}`.repeat(40) })),
  ]
  writeQueueFile(dir, saved)
  writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ next_job_num: 7, hash_keys: schemes.map((scheme) => scheme.key) }))

  let checks = 0
  const hasPrefixAt = HashScheme.prototype.hasPrefixAt
  t.teardown(() => {
    HashScheme.prototype.hasPrefixAt = hasPrefixAt
  })
  HashScheme.prototype.hasPrefixAt = function (this: HashScheme, ...args: Parameters<HashScheme['hasPrefixAt']>): boolean {
    checks++
    return hasPrefixAt.apply(this, args)
  }
  const queue = new Queue()
  new SnapshotStore(dir, logger).load(queue)
  // The scheme of the line before, then the one its prefix leads to.
  t.ok(checks > 0 && checks <= 2 * saved.length, `${checks} prefix checks for ${saved.length} lines`)
  for (const { jobNum, hash } of saved) t.equal(queue.findJob(hash)?.job.jobNum, jobNum, `job ${jobNum} found by its hash`)
  t.same(
    drain(queue).map((job) => [job.jobNum, job.hasStoredHash]),
    saved.map(({ jobNum }) => [jobNum, jobNum > 3]),
    "the last key's jobs keep its scheme, the others their strings",
  )
})
