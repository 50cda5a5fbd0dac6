import { writeSync } from 'node:fs'

/**
 * Pretty log lines for a terminal: `2026-11-22T04:11:00.123Z INFO  listening address=0.0.0.0:8282`,
 * the level coloured when the terminal takes colours, then the line's fields as key=value (strings
 * quoted when they hold spaces), and an error's stack indented below. The JSON lines pino writes
 * are turned into these one by one, so every field of the JSON format is still there.
 */

const LEVELS: Record<number, [name: string, colour: number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 36],
  30: ['INFO ', 32],
  40: ['WARN ', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 35],
}

/** Fields every line has, shown in the line's head (or not at all: the pid is the same on every line). */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'err'])

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)
  return JSON.stringify(v) ?? String(v)
}

export function formatLogLine(json: string, colours: boolean): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`
  }
  const [name, colour] = LEVELS[entry.level as number] ?? [String(entry.level).padEnd(5), 0]
  const level = colours ? `\x1b[${colour}m${name}\x1b[39m` : name
  const message = colours ? `\x1b[1m${String(entry.msg ?? '')}\x1b[22m` : String(entry.msg ?? '')
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, v]) => `${colours ? `\x1b[2m${key}=\x1b[22m` : `${key}=`}${value(v)}`)
  let line = `${String(entry.time ?? '')} ${level} ${message}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`
  const err = entry.err as { message?: string; stack?: string } | undefined
  if (err !== undefined) line += `${(err.stack ?? err.message ?? JSON.stringify(err)).replace(/^/gm, '    ')}\n`
  return line
}

/** A pino destination that writes pretty lines to file descriptor `fd`, synchronously like pino's own. */
export function prettyDestination(fd: number, colours: boolean): { write(line: string): void } {
  return {
    write(line: string): void {
      writeSync(fd, formatLogLine(line, colours))
    },
  }
}
