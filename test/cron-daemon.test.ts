import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { slotHash } from '../src/service/cron'
import { type Running, call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Cron against the real daemon: entries from the config file and added at run time fire ordinary
 * jobs, each slot once, across a SIGKILL and a restart straight after a slot fired; run-time
 * entries, pauses and deletions survive restarts; next fire times show in GET /.
 */

interface ListedJob {
  hash: string
  lane: string
  message: string
  unique_key?: string
}

async function listed(d: Running): Promise<ListedJob[]> {
  return Object.values((await call(`${d.url}/jobs`)).body as Record<string, ListedJob[]>).flat()
}

/** The slots (ms) of the jobs an entry fired, from their unique keys. */
function slots(jobs: ListedJob[], name: string): number[] {
  return jobs.filter((job) => job.unique_key?.startsWith(`cron:${name}:`)).map((job) => Date.parse(job.unique_key!.slice(`cron:${name}:`.length)))
}

function withConfig(dir: string, config: unknown): string[] {
  const file = path.join(dir, 'config.json')
  writeFileSync(file, JSON.stringify(config))
  return ['--config', file, '--persistence', 'journal']
}

t.test('each slot fires once across a SIGKILL and an immediate restart (every: 1 and a 6-field pattern)', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const args = withConfig(dir, {
    cron: [
      { name: 'every', every: 1, message: 'e' },
      { name: 'pattern', schedule: '* * * * * *', lane: 'p', message: 'p', missed: 'once' },
    ],
  })
  const fired = new Map<string, number[]>()
  for (let run = 0; run < 3; run++) {
    const d = await startDaemon({ dataDir: dir, args })
    const before = (await listed(d)).length
    // Kill right after a slot fired, so the restart comes within the same second as that slot.
    await until(async () => (await listed(d)).length >= before + 2 + run, 'a slot to fire', 10_000)
    const jobs = await listed(d)
    t.equal(await d.stop('SIGKILL'), null)
    for (const name of ['every', 'pattern']) fired.set(name, slots(jobs, name))
  }
  const d = await startDaemon({ dataDir: dir, args })
  t.teardown(() => d.stop())
  const jobs = await listed(d)
  for (const name of ['every', 'pattern']) {
    const all = slots(jobs, name)
    t.equal(new Set(all).size, all.length, `${name}: no slot fired twice (${all.length} slots)`)
    t.ok(all.length >= 3, `${name}: fired in every run`)
    t.ok((fired.get(name) ?? []).every((slot) => all.includes(slot)), `${name}: every slot seen before the kills is still there`)
    for (const job of jobs.filter((j) => j.unique_key?.startsWith(`cron:${name}:`))) {
      t.equal(job.hash, slotHash(name, Date.parse(job.unique_key!.slice(`cron:${name}:`.length))), `${name}: the hash derives from the entry and the slot`)
    }
  }
})

t.test('entries added, paused and deleted at run time survive restarts; GET / shows next fire times', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const args = withConfig(dir, { cron: [{ name: 'nightly', schedule: '0 3 * * *', timezone: 'Europe/Berlin', message: 'n' }] })
  const first = await startDaemon({ dataDir: dir, args })
  const added = await call(`${first.url}/cron/add`, { name: 'report', schedule: '0 0 1 1 *', lane: 'reports', priority: 3, message: 'yearly' })
  t.equal(added.body.code, 0)
  t.match(added.body.cron, { name: 'report', source: 'api', paused: false, next_fire_at: /-01-01T00:00:00.000Z$/ })
  await call(`${first.url}/cron/add`, { name: 'gone', every: 3600, message: 'x' })
  t.equal((await call(`${first.url}/cron/pause`, { name: 'nightly' })).body.code, 0, 'config entries can be paused')
  t.equal((await call(`${first.url}/cron/delete`, { name: 'gone' })).body.code, 0)
  t.equal(await first.stop('SIGKILL'), null)

  const second = await startDaemon({ dataDir: dir, args })
  t.teardown(() => second.stop())
  const list = (await call(`${second.url}/cron`)).body.entries as { name: string; paused: boolean; source: string; next_fire_at: string | null }[]
  t.same(list.map((e) => [e.name, e.source, e.paused]).sort(), [['nightly', 'config', true], ['report', 'api', false]])
  const status = (await call(`${second.url}/`)).body.payload as { cron: Record<string, { next_fire_at: string | null; paused: boolean }> }
  t.equal(status.cron.nightly!.next_fire_at, null, 'paused: no next firing')
  t.match(status.cron.report!.next_fire_at, /-01-01T00:00:00.000Z$/)
  t.equal((await call(`${second.url}/cron/resume`, { name: 'nightly' })).body.code, 0)
  const resumed = ((await call(`${second.url}/`)).body.payload as typeof status).cron.nightly!
  t.match(resumed.next_fire_at, /T0[12]:00:00.000Z$/, '03:00 in Berlin is 01:00 or 02:00 UTC')
})

t.test('bad entries are refused with the key and the reason', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: withConfig(dir, { lanes: { thumbs: { runner: 'exec', command: ['/bin/true'], arguments: [{ key: 'SRC', presence: 'required' }] } } }) })
  t.teardown(() => d.stop())
  const refusals: [unknown, number, RegExp][] = [
    [{ name: 'a', schedule: '61 * * * *', message: 'm' }, 400, /"schedule" "61 \* \* \* \*" is not valid: .*minute/],
    [{ name: 'a', every: 0.5, message: 'm' }, 400, /"every" must be a whole number of seconds from 1/],
    [{ name: 'a', every: 5 }, 400, /"message" must be a string \(or give "arguments"\)/],
    [{ name: 'a', every: 5, message: 'm', shedule: '* * * * *' }, 400, /unknown setting "the entry.shedule" \(did you mean "schedule"\?\)/],
    [{ name: 'a', every: 5, lane: 'thumbs', arguments: { WIDTH: 3 } }, 400, /SRC/],
    [{ name: 'a', schedule: '* * * * *', timezone: 'Mars/Olympus', message: 'm' }, 400, /Mars\/Olympus/],
  ]
  for (const [entry, status, message] of refusals) {
    const reply = await call(`${d.url}/cron/add`, entry)
    t.equal(reply.status, status, JSON.stringify(entry))
    t.match(reply.body.message, message)
  }
  t.equal((await call(`${d.url}/cron/add`, { name: 'a', every: 5, lane: 'thumbs', arguments: { SRC: 'x.png' } })).body.code, 0)
  const again = await call(`${d.url}/cron/add`, { name: 'a', every: 5, message: 'm' })
  t.equal(again.status, 409)
  t.equal((await call(`${d.url}/cron/pause`, { name: 'nope' })).body.code, 17)
  t.equal((await call(`${d.url}/cron/pause`, {})).status, 400)
  t.same(((await call(`${d.url}/cron`)).body.entries as { name: string }[]).map((e) => e.name), ['a'], 'only the good entry was added')
})

t.test('a config file entry that could never fire stops the start, naming it', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const file = path.join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ cron: [{ name: 'x', schedule: '* * *', message: 'm' }] }))
  const result = await runToExit(['--config', file, '--data-dir', dir, '--address', '127.0.0.1:0'])
  t.equal(result.code, 1)
  t.match(result.stderr + result.stdout, /cron\[0\] \("x"\): "schedule" "\* \* \*" is not valid/)
})
