import type { Client } from './connection'
import { Script } from './connection'
import { LaneKeys, metaKey } from './keys'
import { META_SCRIPTS } from './lua/meta'

/**
 * Lane names and their ids (8 hex digits, part of every job hash), kept in two hashes on the meta
 * slot and cached here until the connection is made again (an id never changes while Redis keeps
 * its data). A lane gets its id when its first job is scheduled (or it is declared); receives
 * never create one.
 */
export class LaneDirectory {
  private readonly ids = new Map<string, string>()
  private readonly names = new Map<string, string>()
  private readonly keyCache = new Map<string, LaneKeys>()
  private readonly create = new Script(META_SCRIPTS.laneId)

  constructor(private readonly prefix: string) {}

  keys(lane: string): LaneKeys {
    let keys = this.keyCache.get(lane)
    if (keys === undefined) this.keyCache.set(lane, (keys = new LaneKeys(this.prefix, lane)))
    return keys
  }

  has(lane: string): boolean {
    return this.ids.has(lane)
  }

  get size(): number {
    return this.ids.size
  }

  lanes(): string[] {
    return [...this.ids.keys()]
  }

  cachedId(lane: string): string | undefined {
    return this.ids.get(lane)
  }

  /** The lane's id, made if it has none yet. */
  async ensure(client: Client, lane: string): Promise<string> {
    const known = this.ids.get(lane)
    if (known !== undefined) return known
    const id = (await this.create.run(client, [metaKey(this.prefix, 'lanes'), metaKey(this.prefix, 'lane_ids')], [lane])) as string
    this.remember(lane, id)
    return id
  }

  /** The lane's id if it has one. */
  async idOf(client: Client, lane: string): Promise<string | undefined> {
    const known = this.ids.get(lane)
    if (known !== undefined) return known
    const id = await client.hget(metaKey(this.prefix, 'lanes'), lane)
    if (id !== null) this.remember(lane, id)
    return id ?? undefined
  }

  /** The name of the lane with `id`, if there is one. */
  async nameOf(client: Client, id: string): Promise<string | undefined> {
    const known = this.names.get(id)
    if (known !== undefined) return known
    const name = await client.hget(metaKey(this.prefix, 'lane_ids'), id)
    if (name !== null) this.remember(name, id)
    return name ?? undefined
  }

  /** Forgets every id (the server may have lost them); they are read again as needed. */
  forget(): void {
    this.ids.clear()
    this.names.clear()
  }

  /** Reads every lane (lanes made by other frontends too). */
  async refresh(client: Client): Promise<void> {
    // As a flat array: an object would lose a lane called "__proto__".
    const flat = (await client.call('HGETALL', metaKey(this.prefix, 'lanes'))) as string[]
    for (let i = 0; i + 1 < flat.length; i += 2) this.remember(flat[i]!, flat[i + 1]!)
  }

  private remember(lane: string, id: string): void {
    this.ids.set(lane, id)
    this.names.set(id, lane)
  }
}
