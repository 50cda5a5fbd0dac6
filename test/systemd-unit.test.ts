import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { BINARY, ROOT, removeDir, tempDir } from './helpers/daemon'

/**
 * contrib/systemd/dispenserd.service passes `systemd-analyze verify` (Debian's systemd package;
 * examples/install-deps installs it), which reads every key without needing systemd running. The
 * unit names /usr/local/bin/dispenserd, where README installs it; verify checks that the program
 * exists, so the copy checked here points at the built binary instead.
 */

const run = promisify(execFile)
const unit = readFileSync(path.join(ROOT, 'contrib', 'systemd', 'dispenserd.service'), 'utf8')

async function verify(text: string): Promise<{ code: number; stderr: string }> {
  const dir = tempDir()
  try {
    writeFileSync(path.join(dir, 'dispenserd.service'), text.replaceAll('/usr/local/bin/dispenserd', BINARY))
    const result = await run('systemd-analyze', ['verify', './dispenserd.service'], { cwd: dir }).catch((err: { code: number; stderr: string }) => err)
    return { code: (result as { code?: number }).code ?? 0, stderr: result.stderr }
  } finally {
    removeDir(dir)
  }
}

t.test('the systemd unit verifies cleanly: no error, no warning', async (t) => {
  t.same(await verify(unit), { code: 0, stderr: '' })
})

t.test('the check catches a mistake (a misspelt key)', async (t) => {
  const checked = await verify(unit.replace('ProtectHome=yes', 'ProtectHomme=yes'))
  t.match(checked.stderr, /Unknown key 'ProtectHomme'/)
})

t.test('the unit runs the daemon from its state directory, reloads on SIGHUP, hardened', (t) => {
  for (const line of ['Type=simple', 'ExecReload=/bin/kill -HUP $MAINPID', 'StateDirectory=dispenserd', 'DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict']) {
    t.match(unit, `\n${line}\n`)
  }
  t.match(unit, /^ExecStart=\/usr\/local\/bin\/dispenserd .*--data-dir \/var\/lib\/dispenserd$/m)
  t.end()
})
