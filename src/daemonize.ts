import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { prepareDirectory } from './persist/data-dir'
import path from 'node:path'
import type { Config } from './config'
import { formatLogLine } from './log-pretty'
import { singleExecutable } from './sea'

/**
 * `-d`: starts a detached copy of this command without -d, its output going to the log file, and
 * waits until it serves. It follows what the start writes to the log: any line is a sign of life
 * (a long load writes one every second), so it waits as long as the daemon is getting somewhere and
 * gives up only after `silenceMs` without a line; loading lines and warnings are shown as they
 * come. A failure shows the lines this start wrote, never an earlier daemon's.
 */
export async function daemonize(config: Config, silenceMs = 60_000): Promise<number> {
  const args = process.argv.slice(2).filter((arg) => arg !== '-d' && arg !== '--daemon')
  const self = singleExecutable() !== undefined ? [] : [process.argv[1]!]
  prepareDirectory(path.dirname(config.log_file), 'log_file')
  const log = openSync(config.log_file, 'a')
  const follower = new LogFollower(config.log_file, fstatSync(log).size)
  let child: ChildProcess
  try {
    child = spawn(process.execPath, [...process.execArgv, ...self, ...args], { detached: true, stdio: ['ignore', log, log, 'ipc'] })
  } finally {
    closeSync(log)
  }
  const colours = process.stderr.isTTY === true && !process.env.NO_COLOR
  return new Promise((resolve) => {
    let lastSign = Date.now()
    let listeningSeen = false
    const relay = (): void => {
      for (const line of follower.newLines()) {
        lastSign = Date.now()
        if (line.includes('"msg":"listening"')) listeningSeen = true
        if (shown(line)) process.stderr.write(formatLogLine(line, colours))
      }
    }
    const poll = setInterval(() => {
      relay()
      if (Date.now() - lastSign > silenceMs) fail(`no sign of life for ${Math.round(silenceMs / 1000)} s (it is still running: pid ${child.pid})`)
    }, 200)
    let settled = false
    /** Leaves the child to itself: this process can exit (a silent child may yet come up). */
    const letGo = (): void => {
      settled = true
      clearInterval(poll)
      child.removeAllListeners('exit')
      child.unref()
      if (child.connected) child.disconnect()
    }
    const fail = (why: string): void => {
      if (settled) return
      letGo()
      follower.newLines()
      process.stderr.write(`dispenserd failed to start: ${why}\n${follower.written().split('\n').slice(-15).join('\n')}`)
      resolve(1)
    }
    child.once('message', (message: { port?: number }) => {
      if (settled) return
      letGo()
      // The log is written asynchronously: the start's lines (up to "listening", written before
      // the message) may reach the file a moment after it. Relay them first, waiting at most 2 s.
      const deadline = Date.now() + 2000
      const finish = (): void => {
        relay()
        if (!listeningSeen && Date.now() < deadline) {
          setTimeout(finish, 20)
          return
        }
        process.stdout.write(`dispenserd started in the background (pid ${child.pid}, port ${message.port}); log: ${config.log_file}\n`)
        resolve(0)
      }
      finish()
    })
    child.once('exit', (code) => fail(`exited with code ${code}`))
  })
}

/** Loading lines, and anything at warn level or above. */
function shown(line: string): boolean {
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string }
    return (entry.level ?? 0) >= 40 || /^(loading queue|still loading|replaying journal|still replaying journal)$/.test(entry.msg ?? '')
  } catch {
    return false
  }
}

/** Reads what was appended to a file since `from`, in whole lines. */
class LogFollower {
  private readonly buffer = Buffer.alloc(64 * 1024)
  private text = ''
  private consumed = 0

  constructor(
    private readonly file: string,
    private offset: number,
  ) {}

  newLines(): string[] {
    let fd: number
    try {
      fd = openSync(this.file, 'r')
    } catch {
      return []
    }
    try {
      for (let n = readSync(fd, this.buffer, 0, this.buffer.length, this.offset); n > 0; n = readSync(fd, this.buffer, 0, this.buffer.length, this.offset)) {
        this.text += this.buffer.toString('utf8', 0, n)
        this.offset += n
      }
    } finally {
      closeSync(fd)
    }
    const end = this.text.lastIndexOf('\n') + 1
    const lines = this.text.slice(this.consumed, end).split('\n').slice(0, -1)
    this.consumed = end
    return lines
  }

  /** Everything this start has written so far. */
  written(): string {
    return this.text
  }
}
