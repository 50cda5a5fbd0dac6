import type { ContainerConfig } from './container-config'
import type { Engine } from './engine'

/**
 * What the container runner knows about containers on the engine: how it finds those of a lane or
 * of one job (by label), and how it tells a container whose result it has read from one it has not.
 */

export const LABELS = {
  namespace: 'dispenserd.namespace',
  lane: 'dispenserd.lane',
  job: 'dispenserd.job',
  jobNum: 'dispenserd.job_num',
  attempt: 'dispenserd.attempt',
} as const

/**
 * A container whose result has been read is renamed with this prefix (labels cannot change after
 * create; a name can). One without it that has exited ended while nobody waited for it: the daemon
 * was down, and the job's next run reads its result instead of starting it again.
 */
export const COLLECTED_PREFIX = 'dispenserd-collected-'

/** A row of `GET /containers/json`. */
export interface Listed {
  Id: string
  Names?: string[]
  State: string
  /** Seconds since the epoch. */
  Created: number
  Labels?: Record<string, string> | null
}

export function isCollected(container: Listed): boolean {
  return (container.Names ?? []).some((name) => name.replace(/^\//, '').startsWith(COLLECTED_PREFIX))
}

export function isRunning(container: Listed): boolean {
  return container.State === 'running' || container.State === 'paused' || container.State === 'restarting'
}

export function isExited(container: Listed): boolean {
  return container.State === 'exited' || container.State === 'dead' || container.State === 'stopped'
}

/** The containers of the lane, or of one of its jobs; all states. */
export function listContainers(engine: Engine, config: ContainerConfig, lane: string, jobHash?: string, signal?: AbortSignal): Promise<Listed[]> {
  const label = [`${LABELS.namespace}=${config.namespace}`, `${LABELS.lane}=${lane}`]
  if (jobHash !== undefined) label.push(`${LABELS.job}=${jobHash}`)
  const query = new URLSearchParams({ all: '1', filters: JSON.stringify({ label }) })
  return engine.json<Listed[]>('GET', `/containers/json?${query.toString()}`, [200], { signal })
}
