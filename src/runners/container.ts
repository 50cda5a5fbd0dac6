import { ApiError } from '../errors'
import type { Logger } from '../log'
import { type ContainerConfig, containerConfig } from './container-config'
import { type Manifest, makeManifest } from './container-manifest'
import { JobsTotal } from './container-metrics'
import { Upkeep } from './container-upkeep'
import { COLLECTED_PREFIX, type Listed, isCollected, isExited, isRunning, listContainers } from './containers'
import { type Answer, CallAborted, Engine, EngineError } from './engine'
import { EngineState } from './engine-state'
import { JqFilter } from './jq'
import { LogFrames } from './log-frames'
import type { RunContext, RunResult, Runner, RunnerJob, RunnerOptions } from './runner'

/**
 * The container runner (the docker job dispatcher): each job runs as a container on a Docker
 * Engine API (Docker, or podman's compatible service): create, start, wait, read the log's last
 * 4 KiB, then rename the container as read (or remove it when `keep_exited_for` is 0).
 *
 * Restarts lose nothing. A running job's lease puts it back in its lane when the daemon dies, so
 * the job comes to a slot again; before creating anything the run looks for a container of its job
 * (labels carry the job's hash) that it has not read yet: a running one is adopted (waited for,
 * still under the lane's timeout counted from its start), one that exited while the daemon was down
 * has its exit code and log read, one created but never started is started. Only a job with no
 * such container gets a new one. At shutdown running containers are left running, to be adopted.
 */

/** The last lines of the log asked for: at least one byte each, so they hold the last 4 KiB. */
const LOG_TAIL_LINES = 4096

interface Found {
  id: string
  /** ms since the epoch, for an adopted running container: the timeout counts from here. */
  startedAt?: number
}

type Exit = { code: number; stoppedBy: string | undefined } | 'left running'

export function createContainerRunner(options: RunnerOptions): Runner {
  const config = containerConfig(options)
  let filter: JqFilter | undefined
  if (config.filter !== undefined) {
    try {
      filter = JqFilter.create(config.filter)
    } catch (err) {
      throw new Error(`"${options.config.filter === undefined ? 'filter_file' : 'filter'}": ${(err as Error).message}`)
    }
  }
  return new ContainerRunner(options.lane, config, filter, options.logger)
}

class ContainerRunner implements Runner {
  private readonly engine: Engine
  private readonly state: EngineState
  private readonly jobsTotal: JobsTotal
  private readonly upkeep: Upkeep
  /** Containers a run is waiting for or reading now. */
  private readonly handling = new Set<string>()

  constructor(
    private readonly lane: string,
    private readonly config: ContainerConfig,
    private readonly filter: JqFilter | undefined,
    logger: Logger,
  ) {
    this.engine = new Engine(config.engine)
    this.state = new EngineState(config.engine.url, logger)
    this.jobsTotal = new JobsTotal(config.namespace)
    this.upkeep = new Upkeep(this.engine, config, lane, this.state, this.handling, logger)
  }

  start(): void {
    this.upkeep.start()
  }

  availability(): ReturnType<EngineState['availability']> {
    return this.state.availability()
  }

  checkArguments(args: Readonly<Record<string, unknown>>): void {
    for (const name of Object.keys(args)) {
      if (Object.hasOwn(this.config.env, name)) throw new ApiError('invalid_data', `argument "${name}" is set by lane ${JSON.stringify(this.lane)}'s "env"; a job cannot change it`)
    }
  }

  stats(): Record<string, unknown> {
    return { namespace: this.config.namespace, engine: this.state.status(), containers: { ...this.upkeep.counts }, jobs_total: this.jobsTotal.list() }
  }

  async close(): Promise<void> {
    await this.upkeep.stop()
    await this.filter?.close()
    this.engine.close()
  }

  async run(job: RunnerJob, { signal, logger }: RunContext): Promise<RunResult> {
    const unavailable = this.state.availability()
    if (unavailable !== undefined) return { status: 'failed', reason: `engine unreachable: ${unavailable.reason}`, requeue: true }
    const made = await makeManifest(this.config, this.filter, job)
    if (!made.ok) return made.result
    const log = logger.child({ hash: job.hash })
    try {
      const found = await this.containerOf(job, made.manifest, signal, log)
      return await this.outcome(found, signal, log)
    } catch (err) {
      return this.failure(err, signal)
    }
  }

  /** The job's container: one an earlier daemon left, or a new one, started. */
  private async containerOf(job: RunnerJob, manifest: Manifest, signal: AbortSignal, log: Logger): Promise<Found> {
    const unread = (await listContainers(this.engine, this.config, this.lane, job.hash)).filter((c) => !isCollected(c))
    const running = unread.find(isRunning)
    if (running !== undefined) {
      const inspected = await this.engine.json<{ State?: { StartedAt?: string } }>('GET', `/containers/${running.Id}/json`, [200])
      log.info({ container: short(running.Id) }, 'adopted a running container an earlier daemon started for this job')
      return { id: running.Id, startedAt: Date.parse(inspected.State?.StartedAt ?? '') || Date.now() }
    }
    const exited = newest(unread.filter(isExited))
    if (exited !== undefined) {
      log.info({ container: short(exited.Id) }, 'reading the result of a container that ended while the daemon was down')
      return { id: exited.Id }
    }
    const created = newest(unread.filter((c) => c.State === 'created'))
    // Create and start are not cut short by the run's signal (a container half made would be left
    // with nobody waiting for it); waitForExit acts on an abort that came meanwhile.
    const id = created?.Id ?? (await this.create(manifest, signal))
    await this.startContainer(id)
    log.info({ container: short(id), image: manifest.Image }, 'container started')
    return { id }
  }

  private async create(manifest: Manifest, signal: AbortSignal): Promise<string> {
    const image = manifest.Image as string
    if (this.config.pull === 'always') await this.pull(image, signal)
    let created: { Id: string }
    try {
      created = await this.engine.json<{ Id: string }>('POST', '/containers/create', [201], { body: manifest })
    } catch (err) {
      if (!(err instanceof EngineError && err.status === 404 && this.config.pull === 'missing')) throw err
      await this.pull(image, signal)
      created = await this.engine.json<{ Id: string }>('POST', '/containers/create', [201], { body: manifest })
    }
    this.jobsTotal.count('create')
    return created.Id
  }

  /** Pulls an image; the engine refuses at once (Docker) or reports a failure inside its progress stream (podman). */
  private async pull(image: string, signal: AbortSignal): Promise<void> {
    let answer: Answer
    try {
      answer = await this.engine.expect('POST', `/images/create?${new URLSearchParams({ fromImage: image }).toString()}`, [200], { signal, timeoutMs: 0 })
    } catch (err) {
      if (err instanceof EngineError && !err.unreachable) throw new EngineError(`pulling ${image} failed: ${err.message}`, err.status)
      throw err
    }
    for (const line of answer.body.toString('utf8').split('\n')) {
      let event: { error?: unknown }
      try {
        event = JSON.parse(line) as { error?: unknown }
      } catch {
        continue
      }
      if (typeof event.error === 'string') throw new EngineError(`pulling ${image} failed: ${event.error}`, 502)
    }
  }

  /** Starts a created container; one the engine refuses to start is removed, so no later run adopts it. */
  private async startContainer(id: string): Promise<void> {
    try {
      await this.engine.expect('POST', `/containers/${id}/start`, [204, 304])
    } catch (err) {
      if (err instanceof EngineError && !err.unreachable) await this.engine.call('DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined)
      throw err
    }
    this.jobsTotal.count('start')
  }

  /** Waits for the container, reads its log, sets it aside; the run's result. */
  private async outcome(found: Found, signal: AbortSignal, log: Logger): Promise<RunResult> {
    const { id } = found
    this.handling.add(id)
    try {
      const exit = await this.waitForExit(found, signal, log)
      if (exit === 'left running') return { status: 'failed', reason: String(signal.reason) }
      this.jobsTotal.count('die', String(exit.code))
      const output = await this.readLog(id, log)
      await this.setAside(id, log)
      if (exit.stoppedBy !== undefined) return { status: 'failed', reason: exit.stoppedBy, exitCode: exit.code, output }
      if (exit.code === 0) return { status: 'succeeded', exitCode: 0, output }
      return { status: 'failed', reason: `exit code ${exit.code}`, exitCode: exit.code, output }
    } finally {
      this.handling.delete(id)
    }
  }

  /**
   * Resolves when the container exits. The run's timeout (or any abort but shutdown) kills it; a
   * shutdown stops only the waiting, leaving the container to the next daemon.
   */
  private async waitForExit(found: Found, signal: AbortSignal, log: Logger): Promise<Exit> {
    const { id } = found
    const waiting = new AbortController()
    let stoppedBy: string | undefined
    const kill = (reason: string): void => {
      if (stoppedBy !== undefined) return
      stoppedBy = reason
      log.warn({ container: short(id), reason }, 'killing the container')
      // Killing one that has just exited answers 409 (Docker) or 500 (podman): it has stopped either way.
      this.engine.call('POST', `/containers/${id}/kill`).catch((err: unknown) => log.warn({ container: short(id), reason: (err as Error).message }, 'could not kill the container'))
    }
    const onAbort = (): void => {
      const reason = String(signal.reason ?? 'aborted')
      if (reason === 'shutdown') waiting.abort(reason)
      else kill(reason)
    }
    let deadline: NodeJS.Timeout | undefined
    if (found.startedAt !== undefined) {
      deadline = setTimeout(() => kill('timeout'), Math.max(0, found.startedAt + this.config.timeoutMs - Date.now()))
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    try {
      const answer = await this.engine.json<{ StatusCode: number; Error?: { Message?: string } | null }>('POST', `/containers/${id}/wait`, [200], { signal: waiting.signal, timeoutMs: 0 })
      // An error here means no exit code: podman answers a container removed meanwhile with status 0 and a message.
      const problem = answer.Error?.Message
      if (problem !== undefined && problem !== '') throw new EngineError(`waiting for container ${short(id)}: ${problem}`, 503)
      return { code: answer.StatusCode, stoppedBy }
    } catch (err) {
      if (err instanceof CallAborted) {
        log.info({ container: short(id), reason: 'shutdown' }, 'container left running; the next daemon adopts it')
        return 'left running'
      }
      // Removed by someone else while it ran: not the job's fault, so an ordinary (retried) failure.
      if (err instanceof EngineError && err.status === 404) throw new EngineError(`container ${short(id)} was removed before it ended (${err.message})`, 503)
      throw err
    } finally {
      clearTimeout(deadline)
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** The last 4 KiB of stdout and stderr; a log that cannot be read leaves the output empty, not the run failed. */
  private async readLog(id: string, log: Logger): Promise<string> {
    const frames = new LogFrames()
    try {
      await this.engine.expect('GET', `/containers/${id}/logs?stdout=1&stderr=1&tail=${LOG_TAIL_LINES}`, [200], { onData: (chunk) => frames.push(chunk) })
    } catch (err) {
      log.warn({ container: short(id), reason: (err as Error).message }, 'could not read the container log')
    }
    return frames.toString()
  }

  /** Marks the container as read: removed when keep_exited_for is 0, else renamed (the upkeep removes it later). */
  private async setAside(id: string, log: Logger): Promise<void> {
    try {
      if (this.config.keepExitedMs === 0) await this.engine.expect('DELETE', `/containers/${id}?force=1&v=1`, [200, 204, 404])
      else await this.engine.expect('POST', `/containers/${id}/rename?name=${COLLECTED_PREFIX}${short(id)}`, [200, 204])
    } catch (err) {
      log.error({ container: short(id), reason: (err as Error).message }, 'could not mark the container as read; a retry of this job would read its result again')
    }
  }

  private failure(err: unknown, signal: AbortSignal): RunResult {
    if (err instanceof CallAborted || signal.aborted) return { status: 'failed', reason: String(signal.reason ?? 'aborted') }
    if (!(err instanceof EngineError)) throw err
    if (err.unreachable) {
      this.state.down(err.message)
      return { status: 'failed', reason: `engine unreachable: ${err.message}`, requeue: true }
    }
    if (err.status === 404 && /image/i.test(err.message)) {
      return { status: 'failed', reason: `image not found on the engine (pull: ${this.config.pull}): ${err.message}`, retry: false }
    }
    const status = err.status ?? 500
    return { status: 'failed', reason: `engine: ${err.message}`, retry: !(status >= 400 && status < 500) }
  }
}

function newest(containers: Listed[]): Listed | undefined {
  return containers.reduce<Listed | undefined>((best, c) => (best === undefined || c.Created > best.Created ? c : best), undefined)
}

function short(id: string): string {
  return id.slice(0, 12)
}
