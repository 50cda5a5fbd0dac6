import pino from 'pino'
import type { LogLevel } from './config'

export type Logger = pino.Logger

/** JSON lines on stdout (the log file under `-d`), with ISO times, for operators and log shippers. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime })
}
