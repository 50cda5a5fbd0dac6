import { spawn } from 'node:child_process'
import { daemonCommand } from './daemon'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the command-line client (the same binary as the daemon) against `url`, with `input` on
 * its standard input (closed at once when there is none); killed after `timeoutMs`.
 */
export function cli(url: string | undefined, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const [cmd, ...cmdArgs] = daemonCommand()
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  if (url !== undefined) env.DISPENSERD_URL = url
  const proc = spawn(cmd!, [...cmdArgs, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  // A command that needs no input may exit before it is written (a usage mistake, a daemon that
  // cannot be reached): the pipe is then closed, which is no failure of the command.
  proc.stdin.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
  })
  proc.stdin.end(options.input ?? '')
  const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 20_000)
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    }),
  )
}
