import { spawn } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { OutputTail, type Runner, type RunnerOptions, type RunResult } from './runner'

/**
 * The exec runner (Dispatch Jobs): runs the lane's `command` with no arguments from the job; the
 * job's `arguments` become environment variables. The child gets its own process group, so a
 * timeout or shutdown stops everything it started: SIGTERM, then SIGKILL after `kill_grace`.
 *
 * The child's environment is small on purpose: the daemon's own (which may hold its auth token)
 * is not passed on; only PATH, HOME, LANG, LC_ALL and TZ, the job's identity and its arguments.
 */

const PASSED_THROUGH = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ']

export interface ExecConfig {
  command: string[]
  killGraceMs: number
  /** Where the program runs (`cwd`, relative to the root directory); the daemon's own when unset. */
  cwd?: string
}

export function execConfig(options: RunnerOptions): ExecConfig {
  const { command, kill_grace: grace } = options.config
  if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === 'string' && part !== '')) {
    throw new Error('"command" must be a non-empty array of strings (the program, then its fixed arguments)')
  }
  if (grace !== undefined && (typeof grace !== 'number' || !(grace >= 0) || grace > 3600)) throw new Error('"kill_grace" must be a number of seconds from 0 to 3600')
  const program = command[0] as string
  const resolved = program.includes('/') ? path.resolve(options.root, program) : findOnPath(program)
  if (resolved === undefined) throw new Error(`"command": ${program} is not on PATH`)
  try {
    if (!statSync(resolved).isFile()) throw new Error('not a file')
    accessSync(resolved, constants.X_OK)
  } catch (err) {
    throw new Error(`"command": ${resolved} cannot be run (${(err as Error).message})`)
  }
  return { command: [resolved, ...(command.slice(1) as string[])], killGraceMs: ((grace as number | undefined) ?? 5) * 1000, cwd: workingDirectory(options) }
}

/** `cwd`: checked at start, so a lane whose directory is missing stops the daemon instead of failing every job. */
function workingDirectory(options: RunnerOptions): string | undefined {
  const { cwd } = options.config
  if (cwd === undefined) return undefined
  if (typeof cwd !== 'string' || cwd === '') throw new Error('"cwd" must be the path of a directory (relative paths are relative to the root directory)')
  const dir = path.resolve(options.root, cwd)
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
  } catch (err) {
    throw new Error(`"cwd": ${dir} is not a directory the program can run in (${(err as Error).message})`)
  }
  return dir
}

function findOnPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue
    const candidate = path.join(dir, program)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** What a child gets of the daemon's environment: PATH, HOME, LANG, LC_ALL and TZ. */
export function baseEnvironment(): Record<string, string> {
  const base: Record<string, string> = {}
  for (const name of PASSED_THROUGH) if (process.env[name] !== undefined) base[name] = process.env[name]!
  return base
}

export function createExecRunner(options: RunnerOptions): Runner {
  const config = execConfig(options)
  const base = baseEnvironment()
  return {
    run(job, context) {
      const env: Record<string, string> = { ...base }
      for (const [key, value] of Object.entries(job.arguments)) env[key] = String(value)
      Object.assign(env, {
        DISPENSERD_LANE: job.lane,
        DISPENSERD_JOB_NUM: String(job.jobNum),
        DISPENSERD_JOB_HASH: job.hash,
        DISPENSERD_ATTEMPT: String(job.attempt),
      })
      return runProcess(config, env, context.signal, config.cwd)
    },
  }
}

/** Runs `config.command` in its own process group with `env`; stops the group when `signal` fires. */
export function runProcess(config: ExecConfig, env: Record<string, string>, signal: AbortSignal, cwd?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const [program, ...args] = config.command
    const child = spawn(program!, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const output = new OutputTail()
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk))
    let stopping: string | undefined
    let killTimer: NodeJS.Timeout | undefined
    const killGroup = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid!, sig)
      } catch {
        // the group is gone already
      }
    }
    const onAbort = (): void => {
      stopping = String(signal.reason ?? 'aborted')
      killGroup('SIGTERM')
      killTimer = setTimeout(() => killGroup('SIGKILL'), config.killGraceMs)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort)
      resolve({ status: 'failed', reason: `cannot start ${program}: ${err.message}`, output: output.toString() })
    })
    // The program is done when it exits: whatever it left behind in its group (and holding its
    // stdout, which would keep 'close' from firing until the timeout) goes with it.
    child.once('exit', () => killGroup('SIGKILL'))
    child.once('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort)
      clearTimeout(killTimer)
      const tail = output.toString()
      if (stopping !== undefined) resolve({ status: 'failed', reason: stopping, output: tail, ...(code === null ? {} : { exitCode: code }) })
      else if (code === 0) resolve({ status: 'succeeded', exitCode: 0, output: tail })
      else if (code !== null) resolve({ status: 'failed', reason: `exit code ${code}`, exitCode: code, output: tail })
      else resolve({ status: 'failed', reason: `killed by ${sig}`, output: tail })
    })
  })
}
