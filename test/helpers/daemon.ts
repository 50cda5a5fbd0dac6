import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type AddressInfo, connect, createServer } from 'node:net'
import { createInterface } from 'node:readline'

export const ROOT = path.resolve(__dirname, '..', '..')

export const BINARY = path.join(ROOT, 'bin', 'dispenserd')
export const NODE_ENTRY = [process.execPath, path.join(ROOT, 'dist', 'src', 'cli.js')]

/**
 * The command the integration tests run: the single executable `bin/dispenserd`, which is what
 * users run, unless DISPENSERD_TEST_BIN=node points them at `node dist/src/cli.js`.
 */
export function daemonCommand(): string[] {
  return process.env.DISPENSERD_TEST_BIN === 'node' ? NODE_ENTRY : [BINARY]
}

export function tempDir(prefix = 'dispenserd-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix))
}

export interface LogLine {
  msg?: string
  level?: number
  [key: string]: unknown
}

export interface Running {
  readonly proc: ChildProcess
  readonly port: number
  readonly url: string
  readonly dataDir: string
  readonly logs: LogLine[]
  readonly stderr: () => string
  /** Sends a signal and resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** Resolves to the exit code once the process has ended. */
  exited: Promise<number | null>
}

export interface StartOptions {
  dataDir?: string
  args?: string[]
  env?: NodeJS.ProcessEnv
}

/** Starts the real daemon on a free loopback port and waits for its "listening" log line. */
export async function startDaemon(options: StartOptions = {}): Promise<Running> {
  const dataDir = options.dataDir ?? tempDir()
  const [cmd, ...cmdArgs] = daemonCommand()
  const proc = spawn(cmd!, [...cmdArgs, '--address', '127.0.0.1:0', '--data-dir', dataDir, ...(options.args ?? [])], {
    env: { ...process.env, DISPENSERD_ROOT: dataDir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: LogLine[] = []
  let stderr = ''
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start in 15 s; stderr: ${stderr}`)), 15_000)
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let parsed: LogLine
      try {
        parsed = JSON.parse(line) as LogLine
      } catch {
        parsed = { msg: line }
      }
      logs.push(parsed)
      if (parsed.msg === 'listening') {
        clearTimeout(timer)
        resolve(Number(String(parsed.address).split(':').pop()))
      }
    })
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`daemon exited with ${code} before listening; stderr: ${stderr}`))
    })
  })
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    dataDir,
    logs,
    stderr: () => stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      return exited
    },
  }
}

/** Starts the daemon for one test, which stops it and removes its data directory at the end. */
export async function daemonForTest(t: { teardown(fn: () => Promise<void>): void }, args: string[] = []): Promise<Running> {
  const d = await startDaemon({ args })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  return d
}

/**
 * Runs the daemon expecting it to refuse to start; resolves to its exit code and output. One still
 * running after `timeoutMs` is killed and reported with `timedOut` (and a null code).
 */
export function runToExit(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const [cmd, ...cmdArgs] = daemonCommand()
  const proc = spawn(cmd!, [...cmdArgs, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let timedOut = false
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const timer = setTimeout(() => {
    timedOut = true
    proc.kill('SIGKILL')
  }, timeoutMs)
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, timedOut })
    }),
  )
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Whether a TCP connection to the loopback `port` is accepted. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

export interface Reply {
  status: number
  body: Record<string, unknown>
  text: string
  headers: Headers
}

/** POSTs (or GETs when body is undefined and method unset) and parses the JSON reply. */
export async function call(url: string, body?: unknown, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
  const text = await res.text()
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new Error(`not JSON (HTTP ${res.status}): ${text.slice(0, 200)}`)
  }
  return { status: res.status, body: parsed, text, headers: res.headers }
}

/** Waits until `check` returns true, polling every 20 ms; fails after `timeoutMs` (generous: a loaded machine is slow, a passing test never waits that long). */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Writes raw bytes on a fresh TCP connection; resolves to everything read until close or `waitMs`. */
export function rawExchange(port: number, payload: string | Buffer, waitMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(received)
    }
    const timer = setTimeout(finish, waitMs)
    socket.on('data', (d) => (received += d.toString()))
    socket.on('close', finish)
    socket.on('error', finish)
    socket.write(payload)
  })
}
