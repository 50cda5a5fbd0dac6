import { chmodSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { type Running, removeDir, startDaemon, tempDir } from './daemon'

/**
 * Starts the daemon with one runner lane `lane` running a shell `script` (its lane block extended
 * by `spec`); the test stops it (SIGKILL: some keep jobs running) and removes its files at the end.
 */
export async function daemonWithScriptLane(
  t: { teardown(fn: () => Promise<void>): void },
  lane: string,
  script: string,
  options: { spec?: Record<string, unknown>; args?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<Running> {
  const dir = tempDir()
  const file = path.join(dir, 'run.sh')
  writeFileSync(file, `#!/bin/sh\n${script}\n`)
  chmodSync(file, 0o755)
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { [lane]: { runner: 'exec', command: [file], ...options.spec } } }))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', config, ...(options.args ?? [])], env: options.env })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(dir)
  })
  return d
}
