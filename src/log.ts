import pino from 'pino'
import type { LogLevel } from './config'

export type Logger = pino.Logger

/** JSON lines on stdout (the log file under `-d`), with ISO times, for operators and log shippers. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime })
}

/** Of two levels, the one that logs more ("silent" has no number: it logs nothing). */
export function moreVerbose(logger: Logger, a: LogLevel, b: LogLevel): LogLevel {
  const rank = (level: LogLevel): number => logger.levels.values[level] ?? Infinity
  return rank(a) <= rank(b) ? a : b
}
