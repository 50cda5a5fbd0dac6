import { execFileSync } from 'node:child_process'
import { createReadStream, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'

/** Git repositories for the Dispatch tests: made locally, served over HTTP, and the git processes left. */

export function git(repo: string, ...args: string[]): string {
  return execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { encoding: 'utf8' }).trim()
}

/** Commits `files` to `repo` (created if need be); returns the commit's SHA. */
export function commit(repo: string, files: Record<string, string>): string {
  if (!existsSync(path.join(repo, '.git'))) execFileSync('git', ['init', '--quiet', repo])
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(repo, name), text)
  git(repo, 'add', '-A')
  git(repo, 'commit', '--quiet', '-m', 'change')
  return git(repo, 'rev-parse', 'HEAD')
}

/** Processes (git and its helpers) whose command line mentions `text`, such as a test server's URL. */
export function processesMentioning(text: string): number[] {
  const pids: number[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) pids.push(Number(pid))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/**
 * Git repositories served over HTTP from a directory, with git's "dumb" protocol (plain files,
 * after `git update-server-info`): enough for git fetch, with no git on the serving side. Every
 * request is recorded, and requests can be held unanswered, as a hung server holds them.
 */
export interface GitHttp {
  url: string
  /** The path of every request, in order. */
  readonly requests: string[]
  /** Requests whose path matches are never answered (until close). */
  hold: RegExp | undefined
  /** Requests held right now, and the most held at once. */
  readonly held: number
  readonly mostHeld: number
  close(): Promise<void>
}

/** Makes `repo` (a working repository) servable: a bare copy at `root/<name>` with the dumb-protocol files. */
export function publish(repo: string, root: string, name: string): string {
  const bare = path.join(root, name)
  execFileSync('git', ['clone', '--quiet', '--bare', repo, bare])
  execFileSync('git', ['--git-dir', bare, 'update-server-info'])
  return bare
}

export async function serveGit(root: string): Promise<GitHttp> {
  const requests: string[] = []
  const heldResponses = new Set<ServerResponse>()
  const state: { hold: RegExp | undefined; mostHeld: number } = { hold: undefined, mostHeld: 0 }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    requests.push(urlPath)
    if (state.hold?.test(urlPath)) {
      heldResponses.add(res)
      state.mostHeld = Math.max(state.mostHeld, heldResponses.size)
      res.once('close', () => heldResponses.delete(res))
      return
    }
    const file = path.join(root, urlPath)
    try {
      if (!statSync(file).isFile()) throw new Error('not a file')
    } catch {
      res.writeHead(404).end('not found')
      return
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' })
    createReadStream(file).pipe(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    get hold() {
      return state.hold
    },
    set hold(pattern: RegExp | undefined) {
      state.hold = pattern
    },
    get held() {
      return heldResponses.size
    },
    get mostHeld() {
      return state.mostHeld
    },
    close: () =>
      new Promise((resolve) => {
        for (const res of heldResponses) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
