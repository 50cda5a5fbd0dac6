import { existsSync, readFileSync, readdirSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { tempDir, until } from './daemon'
import { preloadLibrary } from './preload'

export interface SyncRecord {
  n: number
  file: string
  size: number
}

/**
 * A paused fsync in the real daemon (see fsync-gate.c): the test decides when each fsync of a
 * journal file may run, sees which have started and finished, and can cut the journal back to what
 * was synced, as a power loss would.
 */
export class FsyncGate {
  readonly dir = tempDir('dispenserd-gate-')
  readonly env: NodeJS.ProcessEnv

  constructor() {
    this.env = { FSYNC_GATE_DIR: this.dir, LD_PRELOAD: preloadLibrary('fsync-gate') }
    this.allow(Number.MAX_SAFE_INTEGER)
  }

  /** Syncs number 1..n may run. */
  allow(n: number): void {
    writeFileSync(path.join(this.dir, 'allow.tmp'), String(n))
    renameSync(path.join(this.dir, 'allow.tmp'), path.join(this.dir, 'allow'))
  }

  /** Sync number n, once let through, fails with EIO (and is not noted as synced). */
  failAt(n: number): void {
    writeFileSync(path.join(this.dir, 'fail'), String(n))
  }

  /** Lets the syncs that have started so far finish, and holds every later one. */
  close(): void {
    this.allow(this.started().length)
  }

  open(): void {
    this.allow(Number.MAX_SAFE_INTEGER)
  }

  started(): SyncRecord[] {
    return this.read('started')
  }

  synced(): SyncRecord[] {
    return this.read('synced')
  }

  async waitStarted(count: number, what: string): Promise<void> {
    await until(() => this.started().length >= count, what)
  }

  /**
   * After a kill: cuts every journal file of `dataDir` back to the size its last finished sync
   * covered (a file never synced to nothing), as if the machine had lost power then. Returns the bytes cut.
   */
  powerLoss(dataDir: string): number {
    const durable = new Map<string, number>()
    for (const { file, size } of this.synced()) durable.set(path.basename(file), Math.max(size, durable.get(path.basename(file)) ?? 0))
    let cut = 0
    for (const name of readdirSync(dataDir)) {
      if (!/^journal\.\d+\.log$/.test(name)) continue
      const file = path.join(dataDir, name)
      const keep = durable.get(name) ?? 0
      cut += Math.max(0, statSync(file).size - keep)
      truncateSync(file, keep)
    }
    return cut
  }

  private read(name: string): SyncRecord[] {
    const file = path.join(this.dir, name)
    if (!existsSync(file)) return []
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [n, file, size] = line.split(' ')
        return { n: Number(n), file: file!, size: Number(size) }
      })
  }
}
