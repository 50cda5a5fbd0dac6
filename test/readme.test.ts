import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { BINARY, ROOT, freePort, removeDir, tempDir } from './helpers/daemon'

/**
 * README's shell examples marked `<!-- readme-test -->` run as written, in order, as a new user
 * would run them from the checkout: here a copy of the launcher beside bin/dispenserd in a fresh
 * directory (so nothing lands in the real checkout), on a free port instead of 8282.
 */

const run = promisify(execFile)
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const blocks = [...readme.matchAll(/^<!-- readme-test -->\n```bash\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)

t.test('README marks its runnable examples', (t) => {
  t.ok(blocks.length >= 4, `${blocks.length} blocks`)
  t.end()
})

t.test("README's marked shell examples run as written and say what README says", async (t) => {
  const root = tempDir('dispenserd-readme-')
  mkdirSync(path.join(root, 'bin'))
  symlinkSync(BINARY, path.join(root, 'bin', 'dispenserd'))
  copyFileSync(path.join(ROOT, 'dispenserd'), path.join(root, 'dispenserd'))
  const port = await freePort()
  // Only what a user's shell would have: none of the test run's DISPENSERD_ variables.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPENSERD_')))
  Object.assign(env, { DISPENSERD_ADDRESS: `127.0.0.1:${port}`, DISPENSERD_URL: `http://127.0.0.1:${port}` })
  t.teardown(async () => {
    await run(path.join(root, 'dispenserd'), ['stop'], { cwd: root, env }).catch(() => undefined)
    removeDir(root)
  })
  let transcript = ''
  for (const block of blocks) {
    const script = block.replace(/(localhost|127\.0\.0\.1):8282/g, `127.0.0.1:${port}`)
    const result = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: root, env, timeout: 60_000 }).catch((err: { code: number; stdout: string; stderr: string }) => err)
    transcript += result.stdout + result.stderr
    t.equal((result as { code?: number }).code ?? 0, 0, `block exits 0:\n${block}\n--- output:\n${result.stdout}${result.stderr}`)
  }
  for (const said of ['job 1 queued', 'hello', 'resize 1.png', 'work/config.json: ok', ': succeeded', 'thumbnail of a.png, 200 px wide', ': dead', 'no such file: b.png', 'exit code 5', 'thumbs: 1 dead job', 'must be a string, got 7', 'stopped']) {
    t.match(transcript, said)
  }
})
