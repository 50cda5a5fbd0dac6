import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { ApiError } from '../errors'
import { isJsonObject } from '../json'
import type { Logger } from '../log'
import { type ArgumentValue, checkDeclared } from './arguments'
import { DispatchError } from './dispatch-error'
import { baseEnvironment, runProcess } from './exec'
import { ENV_NAME } from './environment'
import { gitEnvironment, runGit } from './git'
import { ARGUMENT_TYPES, type ArgumentSpec } from './lanes'
import { type Location, isUnder, parseRepoLocation } from './location'
import { Mirrors, repoId } from './mirrors'
import { OutputTail, type Runner, type RunnerJob, type RunResult } from './runner'

export { DispatchError }

/**
 * Dispatch Jobs (the Dispatch seed): a job names a git repository and a commit; the repository's
 * `.dispatch.yml` says how to build it (`build:` shell steps), what arguments it takes
 * (`arguments:`) and, our addition, what to run (`run:`). The commit is fetched into a bare mirror
 * under the cache directory, built once per (repository, commit), and the program runs in the
 * build with the job's arguments as its environment, as the exec runner runs commands.
 * (Mirrors and fetches: mirrors.ts.)
 */

const DISPATCHFILE = '.dispatch.yml'
const MAX_DISPATCHFILE_BYTES = 1024 * 1024
const DEFAULT_KILL_GRACE_MS = 5000

/** A commit: 7 to 40 hex digits. Never a branch name, and nothing git could read as an option. */
const COMMIT = /^[0-9a-fA-F]{7,40}$/

export interface Dispatchfile {
  build: string[]
  arguments: ArgumentSpec[]
  run: string
}

type Fail = (problem: string) => never

export function parseDispatchfile(text: string, where: string): Dispatchfile {
  const fail: Fail = (problem) => {
    throw new DispatchError(`${where}: ${problem}`)
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    return fail(`not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (!isJsonObject(doc)) return fail('expected a mapping with "build", "arguments" and "run"')
  refuseUnknown(doc, ['build', 'arguments', 'run'], '', fail)
  return { build: parseBuild(doc.build, fail), arguments: parseArguments(doc.arguments, fail), run: parseRun(doc.run, fail) }
}

/** A misspelt key ("presense", "argument") would otherwise be silently ignored. */
function refuseUnknown(map: Record<string, unknown>, known: string[], at: string, fail: Fail): void {
  for (const key of Object.keys(map)) if (!known.includes(key)) fail(`${at}unknown field ${JSON.stringify(key)} (expected ${known.join(', ')})`)
}

function isCommandText(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '' && !value.includes('\0')
}

function parseBuild(raw: unknown, fail: Fail): string[] {
  const build = raw ?? []
  if (!Array.isArray(build) || !build.every(isCommandText)) return fail('"build" must be a list of shell commands, such as ["make"]')
  return build
}

function parseRun(raw: unknown, fail: Fail): string {
  if (!isCommandText(raw)) return fail('"run" must name the program to start, such as ./bin/echo')
  // A common slip is a command line: the program gets no arguments; it reads its environment.
  if (/\s/.test(raw)) return fail(`"run" must name one program, not a command line (got ${JSON.stringify(raw)}): the job's arguments reach it as environment variables`)
  return raw
}

function parseArguments(raw: unknown, fail: Fail): ArgumentSpec[] {
  const entries = raw ?? []
  if (!Array.isArray(entries)) return fail('"arguments" must be a list of {key, type, presence}')
  const seen = new Set<string>()
  return entries.map((entry: unknown, i): ArgumentSpec => {
    if (!isJsonObject(entry)) return fail(`arguments[${i}] must be a mapping such as {key: NAME, type: string, presence: required}`)
    refuseUnknown(entry, ['key', 'type', 'presence'], `arguments[${i}]: `, fail)
    const { key, type = 'string', presence = 'optional' } = entry
    if (typeof key !== 'string' || !ENV_NAME.test(key)) return fail(`arguments[${i}].key must be an environment variable name (letters, digits, _)`)
    if (seen.has(key)) return fail(`arguments[${i}]: "${key}" is declared twice`)
    seen.add(key)
    if (!(ARGUMENT_TYPES as readonly unknown[]).includes(type)) return fail(`arguments[${i}].type must be one of ${ARGUMENT_TYPES.join(', ')}`)
    if (presence !== 'required' && presence !== 'optional') return fail(`arguments[${i}].presence must be required or optional`)
    return { key, type: type as ArgumentSpec['type'], required: presence === 'required' }
  })
}

/** Checks a Dispatch Job's arguments against its Dispatchfile (ApiError 'invalid_data' naming the key). */
export function validateDispatchArguments(file: Dispatchfile, args: unknown): Record<string, ArgumentValue> {
  if (args === undefined || args === null) args = {}
  if (!isJsonObject(args)) throw new ApiError('invalid_data', '"arguments" must be an object')
  return checkDeclared(file.arguments, args)
}

/** Writes the commit's files into `dir`: `git archive | tar -x`, no worktree bookkeeping to undo. */
async function extract(gitDir: string, sha: string, dir: string): Promise<void> {
  const archive = spawn('git', ['--git-dir', gitDir, 'archive', '--format=tar', sha], { env: gitEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] })
  const untar = spawn('tar', ['-x', '-f', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] })
  const errors = new OutputTail(1024)
  archive.stderr.on('data', (chunk: Buffer) => errors.push(chunk))
  untar.stderr.on('data', (chunk: Buffer) => errors.push(chunk))
  // If tar dies first, git's writes fail with EPIPE: the exit codes below report it.
  untar.stdin.on('error', () => undefined)
  archive.stdout.pipe(untar.stdin)
  const [gitCode, tarCode] = await Promise.all([exitCode(archive), exitCode(untar)])
  if (gitCode !== 0 || tarCode !== 0) throw new Error(`cannot extract commit ${sha}: ${errors.toString().trim() || `git archive exited ${gitCode}, tar ${tarCode}`}`)
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
}

/** A build step that failed; `output` is the end of the build's output, for the job's report. */
export class BuildError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message)
  }
}

/** Work shared by the callers waiting for it (a build, a Dispatchfile read): it stops when the last one gives up. */
interface Shared<T> {
  done: Promise<T>
  /** Aborted when the last caller waiting gave up (a timeout, a shutdown, an HTTP client that left). */
  controller: AbortController
  waiting: number
}

interface Commit {
  sha: string
  file: Dispatchfile
}

const NEVER = new AbortController().signal

export interface DispatchReposOptions {
  /** Cache root, such as <data_dir>/dispatch: mirrors/ and builds/ go below it. */
  dir: string
  /** URL (or path) prefixes of the repositories that may be run; empty: none. */
  allowedRepos: string[]
  logger: Logger
  /** How long a build step or program gets between SIGTERM and SIGKILL when stopped. */
  killGraceMs?: number
  /** How long one fetch may take (default FETCH_TIMEOUT_MS). */
  fetchTimeoutMs?: number
  /** Fetches at once, in all (default MAX_FETCHES); more wait in line. */
  maxFetches?: number
}

/** Bare mirrors of the repositories jobs name, their Dispatchfiles, and one build per commit. */
export class DispatchRepos {
  readonly killGraceMs: number
  private readonly mirrors: Mirrors
  private readonly files = new Map<string, Shared<Commit>>()
  private readonly builds = new Map<string, Shared<string>>()
  private readonly allowed: Location[]

  constructor(private readonly options: DispatchReposOptions) {
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
    this.mirrors = new Mirrors({ dir: path.join(options.dir, 'mirrors'), logger: options.logger, fetchTimeoutMs: options.fetchTimeoutMs, maxFetches: options.maxFetches })
    this.allowed = options.allowedRepos.map((prefix, i) => {
      const location = parseRepoLocation(prefix)
      if (typeof location === 'string') throw new Error(`dispatch: allowed_repos[${i}] ${JSON.stringify(prefix)} ${location}`)
      return location
    })
  }

  /** Why a job may not name `repoUrl`, or undefined when it is under one of the allowed prefixes. */
  refusal(repoUrl: string): string | undefined {
    const location = typeof repoUrl === 'string' ? parseRepoLocation(repoUrl) : 'is not a string'
    if (typeof location === 'string') return `repository ${JSON.stringify(repoUrl)} ${location}`
    if (!this.allowed.some((prefix) => isUnder(location, prefix))) return `repository ${JSON.stringify(repoUrl)} is not under dispatch.allowed_repos`
    return undefined
  }

  isAllowed(repoUrl: string): boolean {
    return this.refusal(repoUrl) === undefined
  }

  /**
   * The commit's full SHA and its parsed Dispatchfile, fetching the commit first if the mirror
   * lacks it. Rejects with a DispatchError saying what is wrong. Kept per (repository, ref). When
   * `signal` fires this call rejects at once; the fetch stops if no other caller waits for it.
   */
  dispatchfile(repoUrl: string, ref: string, signal: AbortSignal = NEVER): Promise<Commit> {
    const refused = this.refusal(repoUrl)
    if (refused !== undefined) return Promise.reject(new DispatchError(refused))
    if (typeof ref !== 'string' || !COMMIT.test(ref)) return Promise.reject(new DispatchError('"ref" must be a commit SHA (7 to 40 hex digits)'))
    const key = `${repoUrl}\n${ref.toLowerCase()}`
    let shared = this.files.get(key)
    if (shared === undefined || shared.controller.signal.aborted) {
      const controller = new AbortController()
      const started: Shared<Commit> = { done: this.readDispatchfile(repoUrl, ref.toLowerCase(), controller.signal), controller, waiting: 0 }
      this.files.set(key, started)
      // Not kept: the commit may be pushed later.
      started.done.catch(() => this.files.get(key) === started && this.files.delete(key))
      shared = started
    }
    return join(shared, signal)
  }

  /** Stops every fetch (at shutdown). */
  close(): void {
    this.mirrors.close()
  }

  /**
   * The directory of a build of the commit, built once: jobs of the same commit share a build in
   * progress, and a finished one is marked so it survives restarts. A failed build is removed and
   * rejects with a BuildError (its output attached); the next call builds afresh. When `signal`
   * fires this call rejects at once; the build itself stops only if no other job still waits for it.
   */
  async build(repoUrl: string, ref: string, signal: AbortSignal): Promise<string> {
    const { sha, file } = await this.dispatchfile(repoUrl, ref, signal)
    // Checked before joining: a build started for a job that had already given up would run unwatched.
    if (signal.aborted) throw new Error(String(signal.reason))
    const dir = path.join(this.options.dir, 'builds', `${repoId(repoUrl)}-${sha}`)
    let shared = this.builds.get(dir)
    if (shared === undefined || shared.controller.signal.aborted) shared = this.startBuild(dir, repoUrl, sha, file, shared)
    return join(shared, signal)
  }

  private readDispatchfile(repoUrl: string, ref: string, signal: AbortSignal): Promise<Commit> {
    return this.mirrors.withCommit(repoUrl, ref, signal, async (gitDir, sha) => {
      let text: string
      try {
        text = await runGit(['--git-dir', gitDir, 'cat-file', 'blob', `${sha}:${DISPATCHFILE}`], { maxBytes: MAX_DISPATCHFILE_BYTES })
      } catch (err) {
        throw new DispatchError(`commit ${sha} of ${repoUrl} has no readable ${DISPATCHFILE} (${(err as Error).message})`)
      }
      return { sha, file: parseDispatchfile(text, `${DISPATCHFILE} of ${repoUrl} at ${sha.slice(0, 12)}`) }
    })
  }

  private startBuild(dir: string, repoUrl: string, sha: string, file: Dispatchfile, abandoned: Shared<string> | undefined): Shared<string> {
    const controller = new AbortController()
    // An abandoned build may still be stopping its step in this directory: start once it is over.
    const before = abandoned?.done.then(
      () => undefined,
      () => undefined,
    )
    const shared: Shared<string> = { done: (before ?? Promise.resolve()).then(() => this.buildInto(dir, repoUrl, sha, file, controller.signal)), controller, waiting: 0 }
    this.builds.set(dir, shared)
    shared.done.catch(() => {
      if (this.builds.get(dir) === shared) this.builds.delete(dir) // the next job builds again
    })
    return shared
  }

  private async buildInto(dir: string, repoUrl: string, sha: string, file: Dispatchfile, signal: AbortSignal): Promise<string> {
    // The mark sits beside the directory, written last: a directory without one is a build that
    // failed or was cut short (even by a crash), and a file in the commit cannot forge it.
    const mark = `${dir}.built`
    if (existsSync(mark)) return dir
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    try {
      await extract(this.mirrors.gitDir(repoUrl), sha, dir)
      await this.runSteps(file.build, dir, signal, { repo: repoUrl, commit: sha })
      writeFileSync(mark, `${new Date().toISOString()}\n`)
    } catch (err) {
      this.remove(dir)
      throw err
    }
    this.options.logger.info({ repo: repoUrl, commit: sha, dir }, 'dispatch: built')
    return dir
  }

  private async runSteps(steps: string[], dir: string, signal: AbortSignal, build: { repo: string; commit: string }): Promise<void> {
    const log = new OutputTail()
    const env = baseEnvironment()
    for (const [i, step] of steps.entries()) {
      if (signal.aborted) throw new Error(`build stopped: ${String(signal.reason)}`)
      // A build can take minutes: say which step it is on, so an operator is not left with silence.
      this.options.logger.info({ ...build, step: i + 1, steps: steps.length, command: step }, 'dispatch: build step')
      log.push(Buffer.from(`$ ${step}\n`))
      const result = await runProcess({ command: ['/bin/sh', '-c', step], killGraceMs: this.killGraceMs }, env, signal, dir)
      log.push(Buffer.from(result.output ?? ''))
      if (result.status === 'succeeded') continue
      if (signal.aborted) throw new Error(`build stopped: ${String(signal.reason)}`)
      const how = result.exitCode === undefined ? `: ${result.reason}` : ` exited with code ${result.exitCode}`
      throw new BuildError(`build failed: step ${i + 1}${how}`, log.toString())
    }
  }

  /** Removes a failed build; one that cannot be removed is still unmarked, so never used. */
  private remove(dir: string): void {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch (err) {
      this.options.logger.warn({ dir, err: (err as Error).message }, 'dispatch: cannot remove a failed build')
    }
  }
}

/** Waits for shared work on behalf of one caller, who may give up (its signal) without stopping the others. */
function join<T>(shared: Shared<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error(String(signal.reason)))
    shared.waiting++
    let left = false
    const leave = (): void => {
      if (left) return
      left = true
      shared.waiting--
      signal.removeEventListener('abort', onAbort)
    }
    const onAbort = (): void => {
      leave()
      if (shared.waiting === 0) shared.controller.abort(signal.reason)
      reject(new Error(String(signal.reason)))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    shared.done.then(
      (value) => {
        leave()
        resolve(value)
      },
      (err: unknown) => {
        leave()
        reject(err)
      },
    )
  })
}

/** A Dispatch Job's message, as POST /v0/jobs/queue stores it. */
function parseDispatchMessage(message: string): { repoUrl: string; ref: string; arguments: unknown } {
  let parsed: unknown
  try {
    parsed = JSON.parse(message)
  } catch {
    parsed = undefined
  }
  if (!isJsonObject(parsed) || typeof parsed.repo_url !== 'string' || typeof parsed.ref !== 'string') {
    throw new ApiError('invalid_data', 'a Dispatch Job\'s message must be {"repo_url", "ref", "arguments"}')
  }
  return { repoUrl: parsed.repo_url, ref: parsed.ref, arguments: parsed.arguments }
}

/** What the program gets, as under the exec runner: the base environment, the arguments, the job's identity. */
function jobEnvironment(job: RunnerJob, args: Record<string, ArgumentValue>): Record<string, string> {
  const env = baseEnvironment()
  for (const [key, value] of Object.entries(args)) env[key] = String(value)
  return { ...env, DISPENSERD_LANE: job.lane, DISPENSERD_JOB_NUM: String(job.jobNum), DISPENSERD_JOB_HASH: job.hash, DISPENSERD_ATTEMPT: String(job.attempt) }
}

/** A job that can never run as written is not retried; an unreachable repository may be later. */
function notRunnable(err: unknown): RunResult {
  const retry = err instanceof ApiError ? false : err instanceof DispatchError ? err.transient : true
  return { status: 'failed', reason: (err as Error).message, retry }
}

/** The dispatch runner: build the job's commit (once), then run its program with the arguments. */
export function createDispatchRunner(repos: DispatchRepos, killGraceMs = repos.killGraceMs): Runner {
  return {
    async run(job, context): Promise<RunResult> {
      let request: ReturnType<typeof parseDispatchMessage>
      let file: Dispatchfile
      let args: Record<string, ArgumentValue>
      try {
        request = parseDispatchMessage(job.message)
        file = (await repos.dispatchfile(request.repoUrl, request.ref, context.signal)).file
        args = validateDispatchArguments(file, request.arguments)
      } catch (err) {
        if (context.signal.aborted) return { status: 'failed', reason: String(context.signal.reason) }
        return notRunnable(err)
      }
      let dir: string
      try {
        dir = await repos.build(request.repoUrl, request.ref, context.signal)
      } catch (err) {
        if (context.signal.aborted) return { status: 'failed', reason: String(context.signal.reason) }
        return { status: 'failed', reason: (err as Error).message, output: err instanceof BuildError ? err.output : '' }
      }
      const program = file.run.includes('/') ? path.resolve(dir, file.run) : file.run
      return runProcess({ command: [program], killGraceMs }, jobEnvironment(job, args), context.signal, dir)
    },
    // At shutdown, once runs are over: fetches still going for POST /v0/jobs/queue stop too.
    close: () => repos.close(),
  }
}
