import type { Logger } from '../log'
import type { ContainerConfig } from './container-config'
import { LABELS, type Listed, isCollected, isExited, isRunning, listContainers } from './containers'
import { CallAborted, type Engine, EngineError } from './engine'
import type { EngineState } from './engine-state'

/**
 * The seed's upkeep loop, per container lane: at start and every `upkeep_interval` it pings the
 * engine (marking it reachable again after an outage), lists the lane's containers by label, and
 * removes exited ones past `keep_exited_for`. Running containers left by an earlier daemon are
 * not touched here: the job they belong to adopts its container when it runs (see container.ts).
 */

/**
 * A container whose result nobody has read (it ended while the daemon was down) or that was created
 * and never started waits this long for its job to come by, whatever `keep_exited_for` says.
 */
export const UNCOLLECTED_KEEP_MS = 24 * 3600 * 1000

export interface UpkeepCounts {
  running: number
  exited: number
  removed: number
}

export class Upkeep {
  readonly counts: UpkeepCounts = { running: 0, exited: 0, removed: 0 }
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<void> | undefined
  /** Ends a round's calls at shutdown: a hung engine must not hold the daemon's exit for a minute. */
  private readonly stopping = new AbortController()
  /** When each exited container ended (ms), read once per container: it does not change. */
  private readonly finishedAt = new Map<string, number>()

  constructor(
    private readonly engine: Engine,
    private readonly config: ContainerConfig,
    private readonly lane: string,
    private readonly state: EngineState,
    /** Containers a run is handling now: not removed under it. */
    private readonly busy: ReadonlySet<string>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.kick()
    this.timer = setInterval(() => this.kick(), this.config.upkeepMs)
    this.timer.unref()
  }

  /** A round from the timer: its own errors are handled inside; anything else is a bug, logged. */
  private kick(): void {
    this.tick().catch((err: unknown) => this.logger.error({ err }, 'container upkeep round failed'))
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    this.stopping.abort('shutdown')
    await this.ticking
  }

  /** One round; rounds never overlap (a slow engine makes them less frequent, not piled up). */
  tick(): Promise<void> {
    this.ticking ??= this.round().finally(() => (this.ticking = undefined))
    return this.ticking
  }

  private async round(): Promise<void> {
    const { signal } = this.stopping
    if (signal.aborted) return
    try {
      await this.engine.expect('GET', '/_ping', [200], { signal })
      this.state.up()
      const listed = await listContainers(this.engine, this.config, this.lane, undefined, signal)
      this.counts.running = listed.filter(isRunning).length
      this.counts.exited = listed.filter(isExited).length
      const present = new Set(listed.map((c) => c.Id))
      for (const id of this.finishedAt.keys()) if (!present.has(id)) this.finishedAt.delete(id)
      for (const container of listed) {
        if (!this.busy.has(container.Id) && (await this.expired(container, signal))) await this.remove(container, signal)
      }
    } catch (err) {
      if (err instanceof CallAborted) return
      if (err instanceof EngineError && err.unreachable) this.state.down(err.message)
      else this.logger.warn({ engine: this.config.engine.url, reason: (err as Error).message }, 'container upkeep failed; trying again at the next round')
    }
  }

  private async expired(container: Listed, signal: AbortSignal): Promise<boolean> {
    const keep = this.config.keepExitedMs
    if (keep === undefined) return false
    const now = Date.now()
    if (container.State === 'created') return now - container.Created * 1000 >= Math.max(keep, UNCOLLECTED_KEEP_MS)
    if (!isExited(container)) return false
    const keepMs = isCollected(container) ? keep : Math.max(keep, UNCOLLECTED_KEEP_MS)
    let finished = this.finishedAt.get(container.Id)
    if (finished === undefined) {
      const inspected = await this.engine.json<{ State?: { FinishedAt?: string } }>('GET', `/containers/${container.Id}/json`, [200, 404], { signal })
      finished = Date.parse(inspected.State?.FinishedAt ?? '')
      // An engine that gives no time (or 0001-01-01) gets one from now: kept a full keep time from here.
      if (!(finished > 0)) finished = now
      this.finishedAt.set(container.Id, finished)
    }
    return now - finished >= keepMs
  }

  private async remove(container: Listed, signal: AbortSignal): Promise<void> {
    await this.engine.expect('DELETE', `/containers/${container.Id}?force=1&v=1`, [200, 204, 404], { signal })
    this.finishedAt.delete(container.Id)
    this.counts.removed++
    const labels = container.Labels ?? {}
    this.logger.info(
      { job_num: Number(labels[LABELS.jobNum]) || undefined, hash: labels[LABELS.job], container: container.Id.slice(0, 12), reason: 'kept long enough' },
      'exited container removed',
    )
  }
}
