import pino from 'pino'
import type { LogFormat, LogLevel } from './config'
import { prettyDestination } from './log-pretty'

export type Logger = pino.Logger

/**
 * Log lines on stdout (the log file under `-d`), with ISO times: JSON for log shippers, or pretty
 * lines for a person (log-pretty.ts). `auto` is pretty when stdout is a terminal, JSON otherwise.
 */
export function createLogger(level: LogLevel, format: LogFormat = 'json'): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true)
  if (!pretty) return pino(options)
  // Colours only on a terminal, and never when NO_COLOR is set (no-color.org).
  return pino(options, prettyDestination(1, process.stdout.isTTY === true && !process.env.NO_COLOR))
}

/** Of two levels, the one that logs more ("silent" has no number: it logs nothing). */
export function moreVerbose(logger: Logger, a: LogLevel, b: LogLevel): LogLevel {
  const rank = (level: LogLevel): number => logger.levels.values[level] ?? Infinity
  return rank(a) <= rank(b) ? a : b
}
