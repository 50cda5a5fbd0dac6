import { isJsonObject } from '../json'
import type { ContainerConfig } from './container-config'
import { LABELS } from './containers'
import type { JqFilter } from './jq'
import type { RunResult, RunnerJob } from './runner'

/**
 * The body of `POST /containers/create` for one run. The lane's settings make a manifest; a lane
 * with a jq `filter` gets that manifest and the job as its input and returns the one to create
 * (the docker job dispatcher's configuration language). Either way the runner's labels go on last,
 * so a filter cannot lose the ones adoption after a restart relies on.
 */

export type Manifest = Record<string, unknown>

/** What a filter reads: the job, and the manifest the lane's settings make. */
export interface FilterInput {
  lane: string
  namespace: string
  job_num: number
  hash: string
  attempt: number
  priority: number
  /** The job's message, parsed: `{"arguments": {...}}`. */
  message: unknown
  arguments: Readonly<Record<string, unknown>>
  manifest: Manifest
}

/** The lane's settings as a manifest: image, command, environment, limits, network, user, labels. */
export function laneManifest(config: ContainerConfig, job: RunnerJob): Manifest {
  const env = { ...Object.fromEntries(Object.entries(job.arguments).map(([name, value]) => [name, String(value)])), ...config.env }
  Object.assign(env, { DISPENSERD_LANE: job.lane, DISPENSERD_JOB_NUM: String(job.jobNum), DISPENSERD_JOB_HASH: job.hash, DISPENSERD_ATTEMPT: String(job.attempt) })
  const hostConfig: Manifest = { NetworkMode: config.network }
  if (config.memoryBytes !== undefined) hostConfig.Memory = config.memoryBytes
  if (config.cpus !== undefined) hostConfig.NanoCpus = Math.round(config.cpus * 1e9)
  return {
    ...(config.image === undefined ? {} : { Image: config.image }),
    ...(config.command === undefined ? {} : { Cmd: config.command }),
    Env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
    ...(config.user === undefined ? {} : { User: config.user }),
    ...(config.workdir === undefined ? {} : { WorkingDir: config.workdir }),
    Labels: { ...config.labels },
    HostConfig: hostConfig,
  }
}

export type Made = { ok: true; manifest: Manifest } | { ok: false; result: RunResult }

function final(reason: string): Made {
  return { ok: false, result: { status: 'failed', reason, retry: false } }
}

/** The manifest for this run, or why there is none (a final failure: the same job would fail again). */
export async function makeManifest(config: ContainerConfig, filter: JqFilter | undefined, job: RunnerJob): Promise<Made> {
  let manifest = laneManifest(config, job)
  if (filter !== undefined) {
    const input: FilterInput = {
      lane: job.lane,
      namespace: config.namespace,
      job_num: job.jobNum,
      hash: job.hash,
      attempt: job.attempt,
      priority: job.priority,
      message: JSON.parse(job.message) as unknown,
      arguments: job.arguments,
      manifest,
    }
    const result = await filter.apply(input)
    // jq itself failing (not loading in time on a busy machine) is no fault of the job's: retried.
    if (!result.ok) return result.transient === true ? { ok: false, result: { status: 'failed', reason: `filter: ${result.message}` } } : final(`filter: ${result.message}`)
    if (result.outputs.length !== 1) return final(`filter: made ${result.outputs.length} outputs; it must make one object, the container manifest`)
    const [output] = result.outputs
    if (!isJsonObject(output)) return final(`filter: made ${JSON.stringify(output)?.slice(0, 80)}; it must make an object, the container manifest`)
    manifest = output
  }
  const problem = check(manifest)
  if (problem !== undefined) return final(`${filter === undefined ? 'manifest' : 'filter: the manifest'} ${problem}`)
  const labels = isJsonObject(manifest.Labels) ? manifest.Labels : {}
  manifest.Labels = {
    ...labels,
    [LABELS.namespace]: config.namespace,
    [LABELS.lane]: job.lane,
    [LABELS.job]: job.hash,
    [LABELS.jobNum]: String(job.jobNum),
    [LABELS.attempt]: String(job.attempt),
  }
  return { ok: true, manifest }
}

/** What the runner relies on in a manifest: an image, labels it can add to, a log it can read, an exit code it can wait for. */
function check(manifest: Manifest): string | undefined {
  if (typeof manifest.Image !== 'string' || manifest.Image.trim() === '') return 'has no "Image" (a non-empty string)'
  if (manifest.Labels !== undefined && (!isJsonObject(manifest.Labels) || !Object.values(manifest.Labels).every((v) => typeof v === 'string'))) {
    return '"Labels" must be an object of strings'
  }
  if (manifest.Tty === true) return 'sets "Tty": the runner reads the log as separate stdout and stderr streams, which a TTY merges'
  const host = manifest.HostConfig
  if (host !== undefined && !isJsonObject(host)) return '"HostConfig" must be an object'
  if (isJsonObject(host) && host.AutoRemove === true) return 'sets "HostConfig.AutoRemove": the exit code would be lost with the container (use keep_exited_for)'
  return undefined
}
