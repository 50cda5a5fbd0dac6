import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { type Running, accepts, call, freePort, removeDir, startDaemon, tempDir, until } from './daemon'

const run = promisify(execFile)

/** A redis-server this test started (Debian's, installed by test/setup/redis.sh), ended by its PID. */
export interface RedisServer {
  readonly port: number
  readonly pid: number
  readonly proc: ChildProcess
  /** SIGSTOP / SIGCONT: the server hangs without closing its connections (an outage clients only see as silence). */
  pause(): void
  resume(): void
  stop(): Promise<void>
}

/** A free loopback port whose cluster bus port (port + 10000) is free too. */
async function freeNodePort(): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port + 10000 < 65536 && !(await accepts(port + 10000))) return port
  }
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 })
  return stdout
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * A redis-server on a port `portOf` picks, once it answers as itself (INFO names its pid): when the
 * port was taken between picking and binding (tests run side by side), the server exits at once
 * and another port is tried, instead of waiting out a timeout or talking to another test's server.
 */
async function spawnAnswering(portOf: () => Promise<number>, dirOf: (port: number) => string, extra: string[]): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await portOf()
    const server = spawnServer(port, dirOf(port), extra)
    const deadline = Date.now() + 15_000
    for (;;) {
      const info = await redisCli(port, 'INFO', 'server').catch(() => '')
      if (info.includes(`process_id:${server.pid}\r`) || info.includes(`process_id:${server.pid}\n`)) return server
      if (server.proc.exitCode !== null || server.proc.signalCode !== null) break
      if (Date.now() > deadline) {
        await server.stop()
        throw new Error(`timed out waiting for redis-server on port ${port} to answer`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    if (attempt === 5) throw new Error('redis-server exited at start on five ports in a row')
  }
}

function spawnServer(port: number, dir: string, extra: string[]): RedisServer {
  mkdirSync(dir, { recursive: true })
  const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...extra], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  return {
    port,
    pid: proc.pid!,
    proc,
    pause: () => process.kill(proc.pid!, 'SIGSTOP'),
    resume: () => process.kill(proc.pid!, 'SIGCONT'),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      process.kill(proc.pid!, 'SIGCONT')
      process.kill(proc.pid!, 'SIGKILL')
      await exited
    },
  }
}

/** One standalone server on a free loopback port, answering PING. */
export async function startRedis(port?: number, extra: string[] = []): Promise<RedisServer & { url: string; dir: string }> {
  const dir = tempDir('dispenserd-redis-')
  const server = await spawnAnswering(async () => port ?? (await freePort()), () => dir, extra)
  return {
    ...server,
    url: `redis://127.0.0.1:${server.port}`,
    dir,
    async stop() {
      await server.stop()
      removeDir(dir)
    },
  }
}

export interface RedisCluster {
  readonly nodes: RedisServer[]
  /** host:port of every master, for --redis-cluster. */
  readonly addresses: string[]
  stop(): Promise<void>
}

/**
 * A real cluster of `masters` masters (and `replicasPerMaster` replicas each), on free loopback
 * ports, with cluster-require-full-coverage off (a failing shard stalls only its own lanes).
 * Resolves once every node reports cluster_state:ok.
 */
export async function startCluster(masters = 3, replicasPerMaster = 0): Promise<RedisCluster> {
  const dir = tempDir('dispenserd-cluster-')
  const nodes: RedisServer[] = []
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      nodes.push(
        await spawnAnswering(freeNodePort, (port) => path.join(dir, String(port)), [
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000',
          '--cluster-require-full-coverage', 'no', '--repl-diskless-sync-delay', '0',
        ]),
      )
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { timeout: 30_000 })
    for (const node of nodes) await waitFor(async () => (await redisCli(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), `node ${node.port} to see the cluster ok`)
  } catch (err) {
    for (const node of nodes) await node.stop()
    removeDir(dir)
    throw err
  }
  return {
    nodes,
    addresses: nodes.slice(0, masters).map((n) => `127.0.0.1:${n.port}`),
    async stop() {
      for (const node of nodes) await node.stop()
      removeDir(dir)
    },
  }
}

/** The port of the master serving `key`'s slot. */
export async function masterOf(cluster: RedisCluster, key: string): Promise<number> {
  const slot = Number((await redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', key)).trim())
  const lines = (await redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'NODES')).trim().split('\n')
  for (const line of lines) {
    const fields = line.split(' ')
    if (!fields[2]!.includes('master')) continue
    for (const range of fields.slice(8)) {
      const [from, to] = range.split('-').map(Number)
      if (slot >= from! && slot <= (to ?? from)!) return Number(fields[1]!.split(':')[1]!.split('@')[0])
    }
  }
  throw new Error(`no master serves slot ${slot}`)
}

/** The Redis store's state in a daemon's GET / (connecting, up or down). */
export async function storeState(d: Running): Promise<string> {
  return ((await call(`${d.url}/`)).body.payload as { store: { state: string } }).store.state
}

/** A daemon over the Redis store (`args` say where), killed at the test's end; resolves once connected. */
export async function startFrontend(t: { teardown(fn: () => Promise<void>): void }, args: string[]): Promise<Running> {
  const d = await startDaemon({ args: ['--store', 'redis', ...args] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => (await storeState(d)) === 'up', 'the frontend to connect to Redis', 15_000)
  return d
}
