import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { call, removeDir, startDaemon, tempDir } from './helpers/daemon'

/** Fair groups against the real daemon: under a flood from one group, each group gets its weight's share; groups survive a restart. */

t.test('groups get shares within 10% of their weights under a flood from one group', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { tenants: { group_weights: { b: 2 } } } }))
  const args = ['--config', config, '--persistence', 'journal']
  const d = await startDaemon({ dataDir: dir, args })
  const batch = (group: string, n: number) => call(`${d.url}/schedule`, { jobs: Array.from({ length: n }, (_, i) => ({ lane: 'tenants', group, message: `${group}${i}` })) })
  for (let i = 0; i < 5; i++) t.equal((await batch('a', 1000)).body.code, 0, 'the flood')
  await batch('b', 600)
  await batch('c', 600)
  t.equal(await d.stop('SIGKILL'), null, 'groups survive a kill (journal)')
  const again = await startDaemon({ dataDir: dir, args })
  t.teardown(() => again.stop())
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
  for (let i = 0; i < 8; i++) {
    const got = await call(`${again.url}/receive_noblock`, { lane: 'tenants', count: 100 })
    for (const job of got.body.jobs as { group: string }[]) counts[job.group]!++
  }
  const total = counts.a! + counts.b! + counts.c!
  t.equal(total, 800)
  for (const [group, weight] of [['a', 1], ['b', 2], ['c', 1]] as const) {
    const expected = (total * weight) / 4
    t.ok(Math.abs(counts[group]! - expected) <= expected * 0.1, `group ${group}: ${counts[group]} of ${total}, weight ${weight}/4 (${expected})`)
  }
})

t.test('"group" is checked', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir })
  t.teardown(() => d.stop())
  for (const group of ['', 7, 'x'.repeat(129), 'a\nb']) {
    const reply = await call(`${d.url}/schedule`, { message: 'm', group })
    t.equal(reply.status, 400)
    t.equal(reply.body.message, '"group" must be a string of 1 to 128 characters, with no control characters')
  }
})
