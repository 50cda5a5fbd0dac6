import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { Engine } from '../../src/runners/engine'
import { ROOT, tempDir } from './daemon'

/**
 * The real container engine the container tests use: the one ./run_tests started (its address in
 * DISPENSERD_TEST_ENGINE), or, when a test file runs on its own, one this file starts for itself
 * with test/setup/containers.sh and stops at its end. Undefined when none can be had here: the
 * reason is in `engineSkip`, and the tests skip saying it.
 */

export interface TestEngine {
  /** unix:///…/engine.sock */
  url: string
  socketPath: string
  image: string
  kind: 'podman' | 'docker'
  client: Engine
}

/** Test containers carry this label; test/setup/containers.sh stop --clean removes them all. */
export const SUITE_LABELS = { suite: 'dispenserd-tests' }

function setUp(): TestEngine | string {
  let env: Record<string, string | undefined> = process.env
  if (env.DISPENSERD_TEST_ENGINE === undefined && env.DISPENSERD_TEST_ENGINE_SKIP === undefined) {
    const dir = tempDir('dispenserd-engine-')
    const script = path.join(ROOT, 'test', 'setup', 'containers.sh')
    let exports: string
    try {
      exports = execFileSync(script, ['start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    } catch (err) {
      return `test/setup/containers.sh start failed: ${(err as Error).message}`
    }
    t.teardown(() => {
      execFileSync(script, ['stop', dir, '--clean'], { stdio: 'ignore' })
    })
    env = Object.fromEntries([...exports.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, '$1')]))
  }
  if (env.DISPENSERD_TEST_ENGINE_SKIP !== undefined) return env.DISPENSERD_TEST_ENGINE_SKIP
  const url = env.DISPENSERD_TEST_ENGINE!
  const client = new Engine({ url, socketPath: url.slice('unix://'.length) })
  t.teardown(() => client.close())
  return { url, socketPath: url.slice('unix://'.length), image: env.DISPENSERD_TEST_IMAGE ?? 'localhost/busybox:test', kind: env.DISPENSERD_TEST_ENGINE_KIND === 'docker' ? 'docker' : 'podman', client }
}

const made = setUp()
export const testEngine: TestEngine | undefined = typeof made === 'string' ? undefined : made
// CI installs the engine (test/setup/containers.sh): there a missing engine fails the tests, not skips them.
if (typeof made === 'string' && process.env.CI === 'true') throw new Error(`no container engine in CI: ${made}`)
export const engineSkip: string | false = typeof made === 'string' ? `no container engine: ${made}` : false
if (engineSkip !== false) console.log(`# ${engineSkip}`)

/** A namespace of its own for one test, so tests running at once never see each other's containers. */
export function uniqueNamespace(): string {
  return `test-${randomBytes(5).toString('hex')}`
}

export interface Seen {
  Id: string
  Names: string[]
  State: string
  Labels: Record<string, string>
}

/** The containers of a namespace, in every state (on the test engine, or another `client` reaches). */
export async function containersOf(namespace: string, client = testEngine!.client): Promise<Seen[]> {
  const filters = JSON.stringify({ label: [`dispenserd.namespace=${namespace}`] })
  return client.json<Seen[]>('GET', `/containers/json?all=1&filters=${encodeURIComponent(filters)}`, [200])
}

/** Removes a namespace's containers (a test's teardown). */
export async function removeNamespace(namespace: string, client = testEngine!.client): Promise<void> {
  for (const container of await containersOf(namespace, client)) await client.call('DELETE', `/containers/${container.Id}?force=1&v=1`)
}
