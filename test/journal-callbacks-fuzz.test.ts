import t from 'tap'
import { createLogger } from '../src/log'
import { Job } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'
import { Journal, type JournalFs, realJournalFs } from '../src/persist/journal'
import { removeDir, tempDir } from './helpers/daemon'

const quiet = createLogger('silent')
function rng(seed: number) { return () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff } }
// Random appends, whenDurable callbacks (some re-entrant: appending, writeNow, rotate), rotations, compactions,
// write failures, fdatasyncs ended in any order with some failing. Each callback is answered once,
// close() ends, and in "always" mode none is answered durable while an fdatasync of an older file,
// under way when it was registered or begun after, has not ended or failed.
const turn = () => new Promise((r) => setImmediate(r))

for (const mode of ['always', 'interval', 'never'] as const) {
t.test(`fuzz ${mode}`, async (t) => {
  const problems: string[] = []
  for (let seed = 1; seed <= Number(process.env.SEEDS ?? 100); seed++) {
    const rand = rng(seed)
    const dir = tempDir()
    const genOfFd = new Map<number, number>()
    type S = { id: number; fd: number; gen: number; done: (e: Error | null) => void; ended?: 'ok' | 'fail' }
    const syncs: S[] = []
    let sid = 0
    let failWrite = false
    const fs: JournalFs = {
      ...realJournalFs,
      open(file) { const fd = realJournalFs.open(file); genOfFd.set(fd, Number(/journal\.(\d+)/.exec(file)![1])); return fd },
      write(fd, d) { if (failWrite) { failWrite = false; throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }) } realJournalFs.write(fd, d) },
      sync(fd, done) { syncs.push({ id: sid++, fd, gen: genOfFd.get(fd)!, done }) },
    }
    const journal = new Journal({ dir, fsync: mode, fsyncMs: 1, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure() {}, logger: quiet, fs })
    const calls = new Map<number, number>()
    let cid = 0
    let closingStarted = false
    let n = 0
    const register = (depth: number): void => {
      const id = cid++
      const gen = journal.generation
      calls.set(id, 0)
      const brokenAt = journal.broken
      const endedBefore = new Set(syncs.filter((s) => s.ended !== undefined).map((s) => s.id))
      journal.whenDurable((err) => {
        calls.set(id, calls.get(id)! + 1)
        if (calls.get(id)! > 1) problems.push(`seed ${seed}: callback ${id} answered twice`)
        if (err === undefined && mode === 'always' && brokenAt === undefined) {
          // Nor the journal whole again (a compaction) while its own file's fdatasync failed.
          for (const s of syncs) if (s.gen === gen && s.ended === 'fail' && !endedBefore.has(s.id) && journal.broken === undefined) problems.push(`seed ${seed}: callback ${id} (gen ${gen}) durable and the journal whole, though sync ${s.id} of its file failed`)
          for (const s of syncs) if (s.gen < gen && s.ended !== 'ok' && !endedBefore.has(s.id)) problems.push(`seed ${seed}: callback ${id} (gen ${gen}) durable while sync ${s.id} of gen ${s.gen} is ${s.ended ?? 'running'}`)
        }
        if (depth < 2 && !closingStarted) {
          const r = rand()
          if (r < 0.3) { journal.scheduled(new Job(++n, stampOf('main', 5, 1_700_000_000), 'x')); register(depth + 1) }
          else if (r < 0.4) journal.writeNow()
          else if (r < 0.45) journal.rotate()
        }
      })
    }
    for (let step = 0; step < 60; step++) {
      const r = rand()
      if (r < 0.3) { journal.scheduled(new Job(++n, stampOf('main', 5, 1_700_000_000), 'x')); register(0) }
      else if (r < 0.4) journal.rotate()
      else if (r < 0.45) journal.writeNow()
      else if (r < 0.47) failWrite = true
      else if (r < 0.5) { const g = journal.rotate(); if (g !== undefined) journal.compacted(g) }
      else if (r < 0.8) {
        const open = syncs.filter((s) => s.ended === undefined)
        if (open.length > 0) { const s = open[Math.floor(rand() * open.length)]!; const fail = rand() < 0.1; s.ended = fail ? 'fail' : 'ok'; s.done(fail ? Object.assign(new Error('EIO'), { code: 'EIO' }) : null) }
      } else await turn()
    }
    // drain
    closingStarted = true
    const closing = journal.close()
    let closed = false
    closing.then(() => { closed = true }, () => { closed = true })
    for (let i = 0; i < 200 && !closed; i++) {
      const open = syncs.filter((s) => s.ended === undefined)
      for (const s of open) { s.ended = 'ok'; s.done(null) }
      await turn()
      await new Promise((r) => setTimeout(r, 2))
    }
    if (!closed) problems.push(`seed ${seed}: close hangs`)
    for (const [id, c] of calls) if (c !== 1) problems.push(`seed ${seed}: callback ${id} answered ${c} times`)
    removeDir(dir)
  }
  t.same(problems.slice(0, 20), [])
})
}
