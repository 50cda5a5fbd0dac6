import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from '../log'
import { DispatchError } from './dispatch-error'
import { runGit } from './git'
import { Limiter } from './limiter'

/**
 * Bare mirrors of the repositories Dispatch Jobs name, one per repository address, under
 * `<cache>/mirrors`. A commit a mirror lacks is fetched: one fetch at a time per mirror (git locks
 * the refs it updates, and a caller that waited often finds its commit brought in by the fetch
 * before it), at most `maxFetches` at once in all, each stopped (with everything git started) at
 * its timeout or when its caller leaves. A mirror that no fetch ever filled (the repository does
 * not exist or cannot be reached) is removed once nobody uses it: asking for made-up repositories
 * under an allowed prefix must not fill the disk.
 */

/** A fetch of a large repository takes a while; a hung one must not hold a request (or a fetch slot) for long. */
export const FETCH_TIMEOUT_MS = 120_000
export const MAX_FETCHES = 4

interface Mirror {
  gitDir: string
  /** `git init --bare`, done once and shared by concurrent callers. */
  ready: Promise<void>
  /** The end of this mirror's chain of fetches. */
  tail: Promise<void>
  /** Callers between acquire and release. */
  users: number
  /** Whether it holds anything worth keeping: it was on disk already, or a fetch succeeded. */
  filled: boolean
}

export interface MirrorsOptions {
  /** Where the mirrors go. */
  dir: string
  logger: Logger
  fetchTimeoutMs?: number
  maxFetches?: number
}

export class Mirrors {
  private readonly byId = new Map<string, Mirror>()
  private readonly fetches: Limiter
  private readonly fetchTimeoutMs: number
  /** Aborted at shutdown: no fetch outlives the daemon (git runs in process groups of its own). */
  private readonly closed = new AbortController()

  constructor(private readonly options: MirrorsOptions) {
    this.fetches = new Limiter(options.maxFetches ?? MAX_FETCHES)
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? FETCH_TIMEOUT_MS
  }

  /** The mirror's git directory (of a repository whose commit was found before). */
  gitDir(repoUrl: string): string {
    return path.join(this.options.dir, `${repoId(repoUrl)}.git`)
  }

  /**
   * Runs `use` with the mirror's git directory and the commit's full SHA, fetching the commit first
   * if the mirror lacks it. Rejects with a DispatchError (cannot fetch, no such commit), or with the
   * signal's reason once `signal` fires.
   */
  async withCommit<T>(repoUrl: string, ref: string, signal: AbortSignal, use: (gitDir: string, sha: string) => Promise<T>): Promise<T> {
    const mirror = this.acquire(repoUrl)
    try {
      await mirror.ready
      const sha = (await resolveCommit(mirror.gitDir, ref)) ?? (await this.fetchCommit(mirror, repoUrl, ref, signal))
      return await use(mirror.gitDir, sha)
    } finally {
      this.release(repoUrl, mirror)
    }
  }

  /** Stops every fetch, running or waiting. */
  close(): void {
    this.closed.abort('shutdown')
  }

  private acquire(repoUrl: string): Mirror {
    const id = repoId(repoUrl)
    let mirror = this.byId.get(id)
    if (mirror === undefined) {
      const gitDir = this.gitDir(repoUrl)
      const filled = existsSync(path.join(gitDir, 'HEAD'))
      mirror = { gitDir, ready: filled ? Promise.resolve() : initMirror(gitDir), tail: Promise.resolve(), users: 0, filled }
      this.byId.set(id, mirror)
    }
    mirror.users++
    return mirror
  }

  private release(repoUrl: string, mirror: Mirror): void {
    if (--mirror.users > 0 || mirror.filled) return
    this.byId.delete(repoId(repoUrl))
    try {
      rmSync(mirror.gitDir, { recursive: true, force: true })
    } catch (err) {
      this.options.logger.warn({ repo: repoUrl, dir: mirror.gitDir, err: (err as Error).message }, 'dispatch: cannot remove an empty mirror')
    }
  }

  /** Fetches every branch and tag (a bare SHA needs the server's consent; a full fetch does not), then looks again. */
  private fetchCommit(mirror: Mirror, repoUrl: string, ref: string, signal: AbortSignal): Promise<string> {
    const work = async (): Promise<string> => {
      if (signal.aborted) throw new Error(String(signal.reason))
      const known = await resolveCommit(mirror.gitDir, ref)
      if (known !== undefined) return known
      await this.fetch(mirror, repoUrl, ref, signal)
      const fetched = await resolveCommit(mirror.gitDir, ref)
      if (fetched === undefined) throw new DispatchError(`commit ${ref} is not in ${repoUrl}${ref.length < 40 ? ' (or the short SHA is ambiguous: give more digits)' : ''}`)
      return fetched
    }
    const result = mirror.tail.then(work)
    mirror.tail = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }

  private async fetch(mirror: Mirror, repoUrl: string, ref: string, signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.closed.signal])
    const args = ['--git-dir', mirror.gitDir, 'fetch', '--quiet', '--no-tags', '--', repoUrl, '+refs/heads/*:refs/mirror/heads/*', '+refs/tags/*:refs/mirror/tags/*']
    try {
      await this.fetches.run(() => {
        this.options.logger.info({ repo: repoUrl, ref, fetches: this.fetches.load }, 'dispatch: fetching')
        return runGit(args, { timeoutMs: this.fetchTimeoutMs, signal: stop })
      }, stop)
    } catch (err) {
      // A caller who left (or a shutdown) is not the repository's fault.
      if (stop.aborted) throw new Error(String(stop.reason))
      this.options.logger.warn({ repo: repoUrl, ref, reason: (err as Error).message }, 'dispatch: fetch failed')
      throw new DispatchError(`cannot fetch ${repoUrl}: ${(err as Error).message}`, true)
    }
    mirror.filled = true
  }
}

export function repoId(repoUrl: string): string {
  return createHash('sha256').update(repoUrl).digest('hex').slice(0, 16)
}

async function initMirror(gitDir: string): Promise<void> {
  mkdirSync(gitDir, { recursive: true })
  await runGit(['init', '--bare', '--quiet', gitDir])
}

/**
 * The full SHA of `ref` if the mirror has that commit. `ref` is checked hex before it gets here,
 * so it cannot read as an option (rev-parse knows --end-of-options only from git 2.30).
 */
export async function resolveCommit(gitDir: string, ref: string): Promise<string | undefined> {
  try {
    return (await runGit(['--git-dir', gitDir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim()
  } catch {
    return undefined
  }
}
