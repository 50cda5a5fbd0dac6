import { spawn } from 'node:child_process'
import { OutputTail } from './runner'

/**
 * Running git for Dispatch Jobs. Git starts helpers of its own (git-remote-https, ssh), so each git
 * runs in a process group of its own and a timeout or an abort kills the whole group: killing git
 * alone left its helper waiting on the network, for as long as the server kept the connection.
 */

/** Local git commands (rev-parse, cat-file, init) answer in far less. */
export const GIT_TIMEOUT_MS = 30_000

/** The transports a Dispatch repository may use, as git itself enforces them (no ext::, fd::). */
const ALLOWED_PROTOCOLS = 'file:git:http:https:ssh'

export function gitEnvironment(): NodeJS.ProcessEnv {
  // Git is the daemon's own tool (the operator's credentials and ssh settings apply), but it must
  // never stop to ask for a password: there is no one to answer.
  return { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: ALLOWED_PROTOCOLS }
}

export interface GitOptions {
  timeoutMs?: number
  /** Stops git (and everything it started) and rejects with the signal's reason. */
  signal?: AbortSignal
  /** Stdout past this many bytes stops git and rejects. */
  maxBytes?: number
}

/** Runs git (no shell); resolves to its stdout, or rejects with an Error in plain words. */
export function runGit(args: string[], options: GitOptions = {}): Promise<string> {
  const { timeoutMs = GIT_TIMEOUT_MS, signal, maxBytes = 1024 * 1024 } = options
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(String(signal.reason)))
    // detached: a process group of its own (and no terminal for ssh to prompt on).
    const child = spawn('git', args, { env: gitEnvironment(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const stdout: Buffer[] = []
    let bytes = 0
    const stderr = new OutputTail(4096)
    let stopped: string | undefined
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // the group is gone already
      }
    }
    const stop = (why: string): void => {
      if (stopped !== undefined) return
      stopped = why
      killGroup()
    }
    const timer = setTimeout(() => stop(`no answer within ${timeoutMs / 1000} s`), timeoutMs)
    const onAbort = (): void => stop(String(signal!.reason))
    signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > maxBytes) stop(`output larger than ${maxBytes} bytes`)
      else stdout.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    const settle = (err: Error | undefined): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err)
      else resolve(Buffer.concat(stdout).toString('utf8'))
    }
    child.once('error', (err) => settle(new Error(`cannot start git: ${err.message}`)))
    // Whatever git left in its group goes with it (a helper still holding a connection, or stderr).
    child.once('exit', killGroup)
    child.once('close', (code, sig) => {
      if (stopped !== undefined) return settle(new Error(stopped))
      if (code === 0) return settle(undefined)
      settle(new Error(gitFailure(stderr.toString(), code === null ? `killed by ${sig}` : `exit code ${code}`)))
    })
  })
}

/** Lines git adds to every failure to reach a repository, which say nothing about this one. */
const BOILERPLATE = /^(Please make sure you have the correct access rights|and the repository exists\.|hint:)/

/**
 * What went wrong, from git's stderr, in a line: its `fatal:` and `error:` messages (and anything
 * before them, such as ssh's "Permission denied"), without the boilerplate that follows them.
 */
export function gitFailure(stderr: string, fallback: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !BOILERPLATE.test(line))
    .map((line) => line.replace(/^(fatal|error): /, ''))
  const text = lines.join('; ')
  if (text === '') return fallback
  return text.length > 500 ? `${text.slice(0, 497)}...` : text
}
