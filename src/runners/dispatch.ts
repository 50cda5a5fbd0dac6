import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { ApiError } from '../errors'
import { isJsonObject } from '../json'
import type { Logger } from '../log'
import { checkDeclared } from './arguments'
import { type ExecConfig, baseEnvironment, runProcess } from './exec'
import { ARGUMENT_TYPES, type ArgumentSpec, ENV_NAME } from './lanes'
import type { Runner, RunResult } from './runner'

/**
 * Dispatch Jobs (the Dispatch seed): a job names a git repository and a commit; the repository's
 * `.dispatch.yml` says how to build it (`build:` shell steps), what arguments it takes
 * (`arguments:`) and, our addition, what to run (`run:`). The commit is fetched into a mirror under
 * the data directory, built once per (repository, commit), and the program runs there with the
 * job's arguments as its environment, as the exec runner runs commands.
 */

const run = promisify(execFile)

export interface Dispatchfile {
  build: string[]
  arguments: ArgumentSpec[]
  run: string
}

export function parseDispatchfile(text: string, where: string): Dispatchfile {
  const fail = (problem: string): never => {
    throw new Error(`${where}: ${problem}`)
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    return fail(`not valid YAML: ${(err as Error).message}`)
  }
  if (!isJsonObject(doc)) return fail('expected a mapping with build, arguments and run')
  const build = doc.build ?? []
  if (!Array.isArray(build) || !build.every((step) => typeof step === 'string' && step.trim() !== '')) fail('"build" must be a list of shell commands')
  if (typeof doc.run !== 'string' || doc.run.trim() === '') fail('"run" must name the program to start, such as ./bin/echo')
  const args = doc.arguments ?? []
  if (!Array.isArray(args)) fail('"arguments" must be a list of {key, type, presence}')
  const spec = (args as unknown[]).map((entry, i): ArgumentSpec => {
    if (!isJsonObject(entry)) return fail(`arguments[${i}] must be a mapping`)
    const { key, type = 'string', presence = 'optional' } = entry
    if (typeof key !== 'string' || !ENV_NAME.test(key)) return fail(`arguments[${i}].key must be an environment variable name`)
    if (!(ARGUMENT_TYPES as readonly unknown[]).includes(type)) return fail(`arguments[${i}].type must be one of ${ARGUMENT_TYPES.join(', ')}`)
    if (presence !== 'required' && presence !== 'optional') return fail(`arguments[${i}].presence must be required or optional`)
    return { key, type: type as ArgumentSpec['type'], required: presence === 'required' }
  })
  return { build: build as string[], arguments: spec, run: doc.run as string }
}

/** Checks a Dispatch Job's arguments against its Dispatchfile (ApiError naming the key). */
export function validateDispatchArguments(file: Dispatchfile, args: unknown): Record<string, unknown> {
  if (args === undefined || args === null) args = {}
  if (!isJsonObject(args)) throw new ApiError('invalid_data', '"arguments" must be an object')
  return checkDeclared(file.arguments, args)
}

/** A commit: 7 to 40 hex digits (never a branch name or anything git could read as an option). */
const COMMIT = /^[0-9a-f]{7,40}$/

export interface DispatchReposOptions {
  /** Cache root: mirrors/ and builds/ go below it. */
  dir: string
  /** URL prefixes of repositories that may be dispatched; empty: none. */
  allowedRepos: string[]
  logger: Logger
  killGraceMs?: number
}

/** Bare mirrors of the repositories jobs name, and one build per (repository, commit). */
export class DispatchRepos {
  private readonly files = new Map<string, Promise<{ sha: string; file: Dispatchfile }>>()
  private readonly builds = new Map<string, Promise<string>>()

  constructor(private readonly options: DispatchReposOptions) {}

  isAllowed(repoUrl: string): boolean {
    return !repoUrl.startsWith('-') && this.options.allowedRepos.some((prefix) => repoUrl.startsWith(prefix))
  }

  /** The commit's full SHA and its Dispatchfile; fetches the commit first if need be. */
  dispatchfile(repoUrl: string, ref: string): Promise<{ sha: string; file: Dispatchfile }> {
    if (!this.isAllowed(repoUrl)) return Promise.reject(new Error(`repository ${JSON.stringify(repoUrl)} is not under dispatch.allowed_repos`))
    if (!COMMIT.test(ref)) return Promise.reject(new Error('"ref" must be a commit SHA (7 to 40 hex digits)'))
    const key = `${repoUrl}\n${ref}`
    let found = this.files.get(key)
    if (found === undefined) {
      found = this.readDispatchfile(repoUrl, ref)
      this.files.set(key, found)
      found.catch(() => this.files.delete(key)) // a failure is not cached: the commit may appear later
    }
    return found
  }

  /** The directory of the commit's build, building it once (concurrent callers share the build). */
  build(repoUrl: string, sha: string, file: Dispatchfile, signal: AbortSignal): Promise<string> {
    const dir = path.join(this.options.dir, 'builds', `${this.repoId(repoUrl)}-${sha}`)
    let building = this.builds.get(dir)
    if (building === undefined) {
      building = this.buildInto(dir, repoUrl, sha, file, signal)
      this.builds.set(dir, building)
      building.catch(() => this.builds.delete(dir)) // the next job builds again
    }
    return building
  }

  private repoId(repoUrl: string): string {
    return createHash('sha256').update(repoUrl).digest('hex').slice(0, 16)
  }

  private async mirror(repoUrl: string): Promise<string> {
    const mirror = path.join(this.options.dir, 'mirrors', `${this.repoId(repoUrl)}.git`)
    if (!existsSync(path.join(mirror, 'HEAD'))) {
      mkdirSync(mirror, { recursive: true })
      await run('git', ['init', '--bare', '--quiet', mirror])
    }
    return mirror
  }

  private async readDispatchfile(repoUrl: string, ref: string): Promise<{ sha: string; file: Dispatchfile }> {
    const mirror = await this.mirror(repoUrl)
    const git = (args: string[]): Promise<{ stdout: string }> => run('git', ['--git-dir', mirror, ...args], { maxBuffer: 1024 * 1024 })
    const resolve = async (): Promise<string | undefined> => {
      try {
        return (await git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).stdout.trim()
      } catch {
        return undefined
      }
    }
    let sha = await resolve()
    if (sha === undefined) {
      // Every branch and tag: fetching a bare SHA needs the server's consent, a full fetch does not.
      try {
        await git(['fetch', '--quiet', '--no-tags', '--', repoUrl, '+refs/heads/*:refs/mirror/heads/*', '+refs/tags/*:refs/mirror/tags/*'])
      } catch (err) {
        throw new Error(`cannot fetch ${repoUrl}: ${lastLine((err as { stderr?: string }).stderr) ?? (err as Error).message}`)
      }
      sha = await resolve()
      if (sha === undefined) throw new Error(`commit ${ref} is not in ${repoUrl}`)
    }
    let text: string
    try {
      text = (await git(['show', `${sha}:.dispatch.yml`])).stdout
    } catch {
      throw new Error(`commit ${sha} of ${repoUrl} has no .dispatch.yml`)
    }
    return { sha, file: parseDispatchfile(text, `.dispatch.yml of ${repoUrl} at ${sha.slice(0, 12)}`) }
  }

  private async buildInto(dir: string, repoUrl: string, sha: string, file: Dispatchfile, signal: AbortSignal): Promise<string> {
    const marker = path.join(dir, '.dispenserd-built')
    if (existsSync(marker)) return dir
    // A directory without the marker is a build that failed or was cut short: start afresh.
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    try {
      await extract(await this.mirror(repoUrl), sha, dir)
      const env = baseEnvironment()
      for (const [i, step] of file.build.entries()) {
        const result = await runProcess({ command: ['/bin/sh', '-c', step], killGraceMs: this.options.killGraceMs ?? 5000 }, env, signal, dir)
        if (result.status === 'failed') throw new BuildError(`build failed: step ${i + 1} (${step}): ${result.reason}`, result.output ?? '')
      }
      writeFileSync(marker, `${new Date().toISOString()}\n`)
      this.options.logger.info({ repo: repoUrl, commit: sha, dir }, 'dispatch: built')
      return dir
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }
}

class BuildError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message)
  }
}

function lastLine(text: string | undefined): string | undefined {
  return text?.trim().split('\n').pop()
}

/** Writes the commit's files into `dir` (git archive, unpacked by tar). */
function extract(mirror: string, sha: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const archive = spawn('git', ['--git-dir', mirror, 'archive', '--format=tar', sha], { stdio: ['ignore', 'pipe', 'pipe'] })
    const untar = spawn('tar', ['-x', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] })
    archive.stdout.pipe(untar.stdin)
    let errors = ''
    archive.stderr.on('data', (c: Buffer) => (errors += c.toString()))
    untar.stderr.on('data', (c: Buffer) => (errors += c.toString()))
    untar.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`cannot extract ${sha}: ${errors.trim() || `tar exited ${code}`}`))))
    archive.once('error', reject)
    untar.once('error', reject)
  })
}

/** A Dispatch Job's message, as queued by POST /v0/jobs/queue. */
interface DispatchMessage {
  repo_url: string
  ref: string
  arguments: Record<string, unknown>
}

/** The dispatch runner: build the job's commit (once), then run its program with the arguments. */
export function createDispatchRunner(repos: DispatchRepos, killGraceMs = 5000): Runner {
  return {
    async run(job, context): Promise<RunResult> {
      const message = JSON.parse(job.message) as DispatchMessage
      let found: { sha: string; file: Dispatchfile }
      let args: Record<string, unknown>
      try {
        found = await repos.dispatchfile(message.repo_url, message.ref)
        args = validateDispatchArguments(found.file, message.arguments)
      } catch (err) {
        return { status: 'failed', reason: (err as Error).message, retry: !(err instanceof ApiError) }
      }
      let dir: string
      try {
        dir = await repos.build(message.repo_url, found.sha, found.file, context.signal)
      } catch (err) {
        if (context.signal.aborted) return { status: 'failed', reason: String(context.signal.reason) }
        return { status: 'failed', reason: (err as Error).message, output: err instanceof BuildError ? err.output : '' }
      }
      const env = baseEnvironment()
      for (const [key, value] of Object.entries(args)) env[key] = String(value)
      Object.assign(env, { DISPENSERD_LANE: job.lane, DISPENSERD_JOB_NUM: String(job.jobNum), DISPENSERD_JOB_HASH: job.hash, DISPENSERD_ATTEMPT: String(job.attempt) })
      const program = found.file.run.includes('/') ? path.resolve(dir, found.file.run) : found.file.run
      const config: ExecConfig = { command: [program], killGraceMs }
      return runProcess(config, env, context.signal, dir)
    },
  }
}
