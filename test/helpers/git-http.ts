import { execFileSync } from 'node:child_process'
import { createReadStream, statSync } from 'node:fs'
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'

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
  /** Requests held right now. */
  readonly held: number
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
  const state: { hold: RegExp | undefined } = { hold: undefined }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    requests.push(urlPath)
    if (state.hold?.test(urlPath)) {
      heldResponses.add(res)
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
    close: () =>
      new Promise((resolve) => {
        for (const res of heldResponses) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
