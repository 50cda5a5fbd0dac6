import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A wrk script that POSTs one of 1,000 prepared schedule bodies: random priority 0–99, 64-byte message. */
export const SCHEDULE_LUA = `
math.randomseed(7)
local bodies = {}
for i = 1, 1000 do
  bodies[i] = string.format('{"message":"%064d","priority":%d}', i, math.random(0, 99))
end
local n = 0
request = function()
  n = n % 1000 + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[n])
end
`

export const EMPTY_POST_LUA = `wrk.method = "POST"\n`

/** A wrk script that POSTs a batch of `size` jobs (64-byte messages, random priority 0–99). */
export function batchLua(size: number): string {
  return `
math.randomseed(11)
local jobs = {}
for i = 1, ${size} do
  jobs[i] = string.format('{"message":"%064d","priority":%d}', i, math.random(0, 99))
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jobs":[' .. table.concat(jobs, ",") .. ']}'
`
}

export interface WrkResult {
  perSecond: number
  non2xx: number
  latencyAvgMs: number
}

function toMs(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text)
  if (!m) return NaN
  const v = Number(m[1])
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
}

export async function wrk(port: number, urlPath: string, lua: string, seconds: number, connections = 32): Promise<WrkResult> {
  const script = path.join(tmpdir(), `bench-${process.pid}-${Math.random().toString(36).slice(2)}.lua`)
  writeFileSync(script, lua)
  const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, `http://127.0.0.1:${port}${urlPath}`], {
    maxBuffer: 1 << 20,
  })
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout)
  if (!rps) throw new Error(`wrk printed no rate:\n${stdout}`)
  const latency = /Latency\s+(\S+)/.exec(stdout)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)
  return { perSecond: Number(rps[1]), non2xx: non2xx ? Number(non2xx[1]) : 0, latencyAvgMs: latency ? toMs(latency[1]!) : NaN }
}

/** redis-benchmark for one command; returns requests per second. */
/**
 * A keyspace for redis-benchmark's `-r`: it must stay below 2^31, or every `__rand_int__` becomes 0
 * and each ZADD after the first only rewrites one member (seen here: ZCARD 1 after 1,000 ZADDs).
 */
export const REDIS_KEYSPACE = 1_000_000_000

export async function redisBenchmark(port: number, requests: number, command: string[], keyspace?: number): Promise<number> {
  if (keyspace !== undefined && keyspace >= 2 ** 31) throw new Error(`redis-benchmark -r ${keyspace}: must be below 2^31 (use REDIS_KEYSPACE)`)
  const args = ['-p', String(port), '-c', '32', '-n', String(requests), '-q', ...(keyspace ? ['-r', String(keyspace)] : []), ...command]
  const { stdout } = await run('redis-benchmark', args, { maxBuffer: 1 << 20 })
  const m = /([\d.]+) requests per second/.exec(stdout.split('\r').pop() ?? stdout)
  if (!m) throw new Error(`redis-benchmark printed no rate:\n${stdout}`)
  return Number(m[1])
}

export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { maxBuffer: 1 << 20 })
  return stdout.trim()
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
