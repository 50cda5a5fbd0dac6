import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'
import { type Running, call, removeDir, startDaemon, tempDir, until } from './daemon'
import { SUITE_LABELS, removeNamespace, testEngine, uniqueNamespace } from './engine'

/** Daemons with container lanes on the test engine, for the container runner's integration tests. */

export interface ContainerDaemon {
  d: Running
  dir: string
  /** Each lane's namespace (one of its own per lane). */
  namespaces: Record<string, string>
  /** Schedules a job on `lane` with these arguments; resolves to its hash. */
  schedule(lane: string, args?: Record<string, unknown>, priority?: number): Promise<string>
  job(hash: string): Promise<Record<string, unknown>>
  /** Waits until the job is in `state` (default: finished, succeeded or dead); resolves to it. */
  settled(hash: string, states?: string[], ms?: number): Promise<Record<string, unknown>>
  runners(): Promise<Record<string, Record<string, unknown>>>
}

/**
 * A lane block with the test engine and image, the suite's labels and a fresh namespace filled in;
 * `lanes` give the rest. The daemon is stopped when the test ends; then, unless `dir` was given
 * (a daemon restarted on the same directory), its containers and directory are removed.
 */
export async function containerDaemon(
  t: Test,
  lanes: Record<string, Record<string, unknown>>,
  options: { dir?: string; args?: string[]; files?: Record<string, string> } = {},
): Promise<ContainerDaemon> {
  const dir = options.dir ?? tempDir()
  // Files the lanes name (filter_file), in the root directory relative paths resolve against.
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(path.join(dir, name), text)
  const namespaces: Record<string, string> = {}
  const blocks: Record<string, unknown> = {}
  for (const [lane, block] of Object.entries(lanes)) {
    namespaces[lane] = (block.namespace as string | undefined) ?? uniqueNamespace()
    blocks[lane] = { runner: 'container', engine: testEngine!.url, image: testEngine!.image, labels: SUITE_LABELS, namespace: namespaces[lane], ...block }
  }
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ lanes: blocks }))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', path.join(dir, 'config.json'), ...(options.args ?? [])], env: { DISPENSERD_ROOT: dir } })
  t.teardown(async () => {
    await d.stop()
    // A directory given is the caller's, and so are the containers of lanes kept across daemons.
    if (options.dir !== undefined) return
    for (const namespace of Object.values(namespaces)) await removeNamespace(namespace)
    removeDir(dir)
  })
  const job = async (hash: string): Promise<Record<string, unknown>> => (await call(`${d.url}/job?hash=${hash}`)).body
  return {
    d,
    dir,
    namespaces,
    async schedule(lane, args = {}, priority) {
      const r = await call(`${d.url}/schedule`, { lane, message: JSON.stringify({ arguments: args }), ...(priority === undefined ? {} : { priority }) })
      if (r.status !== 200) throw new Error(`schedule answered ${r.status}: ${JSON.stringify(r.body)}`)
      return String(r.body.hash)
    },
    job,
    async settled(hash, states = ['succeeded', 'dead'], ms = 30_000) {
      let last: Record<string, unknown> = {}
      await until(async () => states.includes(String((last = await job(hash)).state)), `job ${hash.slice(0, 8)} to be ${states.join(' or ')}`, ms)
      return last
    },
    async runners() {
      const status = (await call(`${d.url}/`)).body as { payload: { runners: Record<string, Record<string, unknown>> } }
      return status.payload.runners
    },
  }
}
