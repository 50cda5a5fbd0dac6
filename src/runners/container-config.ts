import { readFileSync } from 'node:fs'
import path from 'node:path'
import { isJsonObject } from '../json'
import { type EngineAddress, parseEngineAddress } from './engine'
import { ENV_NAME } from './environment'
import type { RunnerOptions } from './runner'

/**
 * A container lane's settings (beside the common lane settings), checked whole when the daemon
 * starts: every mistake stops it with a message naming the key.
 */

export const PULL_POLICIES = ['never', 'missing', 'always'] as const
export type PullPolicy = (typeof PULL_POLICIES)[number]

/** The labels the runner sets on every container; a lane's own labels may not use the prefix. */
export const LABEL_PREFIX = 'dispenserd.'

export const DEFAULT_ENGINE = 'unix:///var/run/docker.sock'

export interface ContainerConfig {
  engine: EngineAddress
  namespace: string
  /** Required unless a filter makes the manifest (and names the image there). */
  image: string | undefined
  command: string[] | undefined
  env: Record<string, string>
  memoryBytes: number | undefined
  cpus: number | undefined
  network: string
  user: string | undefined
  workdir: string | undefined
  labels: Record<string, string>
  pull: PullPolicy
  /** undefined: exited containers are kept (the seed's default); 0: removed as soon as their result is read. */
  keepExitedMs: number | undefined
  upkeepMs: number
  /** The lane's timeout, also applied to a container adopted after a restart (counted from its start). */
  timeoutMs: number
  /** The jq program that makes the manifest, if any. */
  filter: string | undefined
}

const MEMORY = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i
const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }
/** Docker refuses less than 6 MiB. */
const MIN_MEMORY = 6 * 1024 ** 2

export function containerConfig(options: RunnerOptions): ContainerConfig {
  const c = options.config
  const text = (key: string, fallback?: string): string | undefined => {
    const value = c[key]
    if (value === undefined) return fallback
    if (typeof value !== 'string' || value.trim() === '' || value.includes('\0')) throw new Error(`"${key}" must be a non-empty string`)
    return value
  }
  const seconds = (key: string, min: number): number | undefined => {
    const value = c[key]
    if (value === undefined) return undefined
    if (typeof value !== 'number' || !(value >= min && value <= 2147483)) throw new Error(`"${key}" must be a number of seconds from ${min} to 2147483`)
    return value * 1000
  }
  const filter = filterProgram(c, options.root)
  const image = text('image')
  if (image === undefined && filter === undefined) throw new Error('"image" is required (or a "filter" / "filter_file" that names the image in the manifest it makes)')
  if (image !== undefined && /\s/.test(image)) throw new Error(`"image" must be an image reference such as localhost/busybox:test (got ${JSON.stringify(image)})`)
  const namespace = text('namespace', 'default')!
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(namespace)) throw new Error('"namespace" must be 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit')
  const workdir = text('workdir')
  if (workdir !== undefined && !workdir.startsWith('/')) throw new Error('"workdir" must be an absolute path inside the container')
  const pull = c.pull ?? 'never'
  if (!(PULL_POLICIES as readonly unknown[]).includes(pull)) throw new Error(`"pull" must be one of ${PULL_POLICIES.join(', ')}`)
  return {
    engine: parseEngineAddress(text('engine', DEFAULT_ENGINE)!, { ca: c.engine_ca, cert: c.engine_cert, key: c.engine_key }, options.root),
    namespace,
    image,
    command: command(c.command),
    env: environment(c.env),
    memoryBytes: memory(c.memory),
    cpus: cpus(c.cpus),
    network: text('network', 'none')!,
    user: text('user'),
    workdir,
    labels: labels(c.labels),
    pull: pull as PullPolicy,
    keepExitedMs: seconds('keep_exited_for', 0),
    upkeepMs: seconds('upkeep_interval', 0.05) ?? 3000,
    timeoutMs: (typeof c.timeout === 'number' ? c.timeout : 300) * 1000,
    filter,
  }
}

function filterProgram(c: Readonly<Record<string, unknown>>, root: string): string | undefined {
  const { filter, filter_file: file } = c
  if (filter !== undefined && file !== undefined) throw new Error('give "filter" or "filter_file", not both')
  if (filter !== undefined) {
    if (typeof filter !== 'string' || filter.trim() === '') throw new Error('"filter" must be a jq program (a non-empty string)')
    return filter
  }
  if (file === undefined) return undefined
  if (typeof file !== 'string' || file === '') throw new Error('"filter_file" must be the path of a file holding a jq program')
  const resolved = path.resolve(root, file)
  let program: string
  try {
    program = readFileSync(resolved, 'utf8')
  } catch (err) {
    throw new Error(`"filter_file": cannot read ${resolved} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (program.trim() === '') throw new Error(`"filter_file": ${resolved} is empty`)
  return program
}

function command(value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0 || !value.every((part) => typeof part === 'string' && !part.includes('\0'))) {
    throw new Error('"command" must be a non-empty array of strings (the program in the image, then its fixed arguments)')
  }
  return value as string[]
}

function environment(value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!isJsonObject(value)) throw new Error('"env" must be an object of environment variables, such as {"MODE": "fast"}')
  for (const [name, setting] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) throw new Error(`"env": ${JSON.stringify(name)} is not an environment variable name (letters, digits, _; not starting with a digit)`)
    if (name.startsWith('DISPENSERD_')) throw new Error(`"env": ${name}: DISPENSERD_ variables are the daemon's own`)
    if (typeof setting !== 'string' || setting.includes('\0')) throw new Error(`"env": ${name} must be a string (without NUL characters)`)
  }
  return value as Record<string, string>
}

function memory(value: unknown): number | undefined {
  if (value === undefined) return undefined
  let bytes = NaN
  if (typeof value === 'number') bytes = value
  else if (typeof value === 'string') {
    const m = MEMORY.exec(value.trim())
    if (m !== null) bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!)
  }
  if (!Number.isSafeInteger(bytes) || bytes < MIN_MEMORY) throw new Error('"memory" must be a number of bytes, or a size such as "256m" or "1g", of at least 6 MiB')
  return bytes
}

function cpus(value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0.01 && value <= 1024)) throw new Error('"cpus" must be a number of CPUs from 0.01 to 1024, such as 0.5')
  return value
}

function labels(value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!isJsonObject(value)) throw new Error('"labels" must be an object of label names and string values')
  for (const [name, setting] of Object.entries(value)) {
    if (name === '' || name.startsWith(LABEL_PREFIX)) throw new Error(`"labels": ${JSON.stringify(name)}: names starting with "${LABEL_PREFIX}" are the runner's own`)
    if (typeof setting !== 'string') throw new Error(`"labels": ${JSON.stringify(name)} must be a string`)
  }
  return value as Record<string, string>
}
