import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { call, removeDir, startDaemon, tempDir } from './helpers/daemon'

/**
 * A promise nobody handled, or an exception nobody caught, is a bug somewhere in the process (here
 * planted by a runner module, the one place outside code we review). The daemon logs it at fatal
 * with its error, then shuts down as SIGTERM would: the final snapshot keeps every job, and the
 * exit code (1) tells a supervisor to start it again.
 */

const MODULE = `
exports.createRunner = () => ({
  async run(job) {
    if (job.arguments.FAULT === 'reject') Promise.reject(new Error('a promise nobody handled'))
    if (job.arguments.FAULT === 'throw') setTimeout(() => { throw new Error('an exception nobody caught') })
    return { status: 'succeeded' }
  },
})
`

for (const [fault, kind, message] of [
  ['reject', 'unhandled rejection', 'a promise nobody handled'],
  ['throw', 'uncaught exception', 'an exception nobody caught'],
] as const) {
  t.test(`an ${kind} is logged with its error, and the daemon stops cleanly with its final snapshot`, async (t) => {
    const dir = tempDir()
    t.teardown(() => removeDir(dir))
    writeFileSync(path.join(dir, 'faulty.js'), MODULE)
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ lanes: { faulty: { runner: './faulty.js' } } }))
    const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', path.join(dir, 'config.json')], env: { DISPENSERD_ROOT: dir } })
    t.teardown(() => d.stop('SIGKILL'))
    await call(`${d.url}/schedule`, { lane: 'kept', message: 'queued before the fault' })
    await call(`${d.url}/schedule`, { lane: 'faulty', message: JSON.stringify({ arguments: { FAULT: fault } }) })
    t.equal(await d.exited, 1, 'exit code 1')
    const fatal = d.logs.find((l) => l.level === 60)
    t.match(fatal, { msg: new RegExp(`^${kind}: `), err: { message } }, 'logged at fatal with the error')
    t.ok(d.logs.some((l) => l.msg === 'stopped'), 'a clean shutdown')
    const saved = JSON.parse(readFileSync(path.join(dir, 'data', 'queue.json'), 'utf8')) as Record<string, { message: string }[]>
    t.same(saved.kept?.map((j) => j.message), ['queued before the fault'], 'the final snapshot was written')
    t.notOk(existsSync(path.join(dir, 'data', 'dispenserd.pid')), 'the pid file is gone: the data is safe')
  })
}
