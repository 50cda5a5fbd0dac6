import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'

export const ROOT = path.resolve(__dirname, '..', '..', '..')
export const BINARY = path.join(ROOT, 'bin', 'dispenserd')

export interface Server {
  name: string
  port: number
  pid: number
  proc: ChildProcess
  /** Log lines (dispenserd's JSON logs, parsed; other servers' raw lines). */
  lines: Record<string, unknown>[]
  dataDir?: string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix))
}

/** Resident memory of a process, from /proc, in bytes. */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) * 1024 : NaN
}

function track(name: string, proc: ChildProcess, port: number, ready: (line: string) => boolean): Promise<Server> {
  const lines: Record<string, unknown>[] = []
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s`)), 30_000)
    let started = false
    const onLine = (line: string): void => {
      let parsed: Record<string, unknown>
      try {
        parsed = JSON.parse(line) as Record<string, unknown>
      } catch {
        parsed = { msg: line }
      }
      lines.push(parsed)
      if (!started && ready(line)) {
        started = true
        clearTimeout(timer)
        resolve({
          name,
          port,
          pid: proc.pid!,
          proc,
          lines,
          stop: async (signal = 'SIGTERM') => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
            return exited
          },
        })
      }
    }
    createInterface({ input: proc.stdout! }).on('line', onLine)
    createInterface({ input: proc.stderr! }).on('line', onLine)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      if (!started) reject(new Error(`${name} exited with ${code}: ${lines.map((l) => JSON.stringify(l)).join('\n')}`))
    })
  })
}

/** Polls a TCP port until it accepts a connection (for servers that print nothing when ready). */
async function whenListening(port: number): Promise<void> {
  const { connect } = await import('node:net')
  for (let i = 0; i < 600; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing listens on ${port}`)
}

export async function startDispenserd(args: string[] = [], dataDir = tempDir('dispenserd-bench-')): Promise<Server> {
  const port = await freePort()
  // Limits off: the workloads measure speed, and the scale and 10M runs go past the defaults.
  const noLimits = ['--max-queued-jobs', '0', '--max-queued-bytes', '0']
  const proc = spawn(BINARY, ['--address', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', 'info', ...noLimits, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return { ...(await track('dispenserd', proc, port, (line) => line.includes('"msg":"listening"'))), dataDir }
}

export function removeDataDir(server: Server): void {
  if (server.dataDir !== undefined) rmSync(server.dataDir, { recursive: true, force: true })
}

/** One of the bare uWS servers in bench/ (ceiling.ts, bound.ts), which print `listening PORT` when ready. */
async function startBare(name: 'ceiling' | 'bound'): Promise<Server> {
  const port = await freePort()
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', `${name}.js`), String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  return track(name, proc, port, (line) => line.startsWith('listening'))
}

export function startCeiling(): Promise<Server> {
  return startBare('ceiling')
}

export function startBound(): Promise<Server> {
  return startBare('bound')
}

/**
 * bench/journal-ceiling.ts in one fsync mode ('none' answers without writing), appending to a file in
 * `dir`: the best a bare uWS program does with a journal on this disk.
 */
export async function startJournalCeiling(mode: 'none' | 'always' | 'interval', dir: string): Promise<Server> {
  const port = await freePort()
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'journal-ceiling.js'), String(port), mode, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  return { ...(await track(`journal-ceiling ${mode}`, proc, port, (line) => line.startsWith('listening'))), dataDir: dir }
}

/** Redis without persistence, unless `persistence` says otherwise (e.g. an AOF in a directory of its own). */
export async function startRedis(persistence: string[] = ['--appendonly', 'no']): Promise<Server> {
  const port = await freePort()
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return track('redis', proc, port, (line) => /Ready to accept connections/.test(line))
}

export async function startBeanstalkd(): Promise<Server> {
  const port = await freePort()
  const proc = spawn('beanstalkd', ['-l', '127.0.0.1', '-p', String(port), '-z', '1048576'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const ready = whenListening(port)
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  await ready
  return {
    name: 'beanstalkd',
    port,
    pid: proc.pid!,
    proc,
    lines: [],
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      return exited
    },
  }
}
