import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Engine } from '../../src/runners/engine'
import { ROOT, startDispenserd, tempDir } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { median } from '../lib/tools'

/**
 * Container jobs per second through the container runner, against the reference measured in the
 * same run: a bare loop doing what a job needs through the same Engine API on the same engine —
 * create, start, wait, remove the same container (`true` in the test image), with the same
 * concurrency. What is left between the two is the daemon's cost per job: taking the job, looking
 * for a container of the job to adopt, reading the log, recording the result. The engine is the one
 * the tests use (test/setup/containers.sh: rootful podman), started here unless
 * DISPENSERD_TEST_ENGINE names one.
 */

const SETUP = path.join(ROOT, 'test', 'setup', 'containers.sh')
const LABELS = { suite: 'dispenserd-tests' }

interface BenchEngine {
  url: string
  image: string
  stop(): void
}

function engine(): BenchEngine {
  if (process.env.DISPENSERD_TEST_ENGINE !== undefined) {
    return { url: process.env.DISPENSERD_TEST_ENGINE, image: process.env.DISPENSERD_TEST_IMAGE ?? 'localhost/busybox:test', stop: () => undefined }
  }
  const dir = tempDir('dispenserd-bench-engine-')
  const exports = execFileSync(SETUP, ['start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const env = Object.fromEntries([...exports.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]))
  if (env.DISPENSERD_TEST_ENGINE_SKIP !== undefined) throw new Error(`no container engine: ${env.DISPENSERD_TEST_ENGINE_SKIP}`)
  return {
    url: env.DISPENSERD_TEST_ENGINE!,
    image: env.DISPENSERD_TEST_IMAGE!,
    stop: () => {
      execFileSync(SETUP, ['stop', dir, '--clean'], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** create/start/wait/remove `count` containers, `concurrency` at a time; resolves to containers per second. */
async function bareLoop(url: string, image: string, count: number, concurrency: number): Promise<number> {
  const client = new Engine({ url, socketPath: url.slice('unix://'.length) })
  const manifest = { Image: image, Cmd: ['true'], Labels: LABELS, HostConfig: { NetworkMode: 'none' } }
  let started = 0
  const one = async (): Promise<void> => {
    while (started < count) {
      started++
      const { Id } = await client.json<{ Id: string }>('POST', '/containers/create', [201], { body: manifest })
      await client.expect('POST', `/containers/${Id}/start`, [204])
      const { StatusCode } = await client.json<{ StatusCode: number }>('POST', `/containers/${Id}/wait`, [200], { timeoutMs: 0 })
      if (StatusCode !== 0) throw new Error(`true exited ${StatusCode}`)
      await client.expect('DELETE', `/containers/${Id}?force=1&v=1`, [200, 204])
    }
  }
  const began = performance.now()
  try {
    await Promise.all(Array.from({ length: concurrency }, one))
    return count / ((performance.now() - began) / 1000)
  } finally {
    client.close()
  }
}

/** Jobs of the lane that ended, from the daemon's log lines (no polling requests: they would load the machine the engine runs on). */
function ended(lines: Record<string, unknown>[]): { succeeded: number; failed: number } {
  let succeeded = 0
  let failed = 0
  for (const line of lines) {
    if (line.msg === 'job succeeded') succeeded++
    else if (typeof line.msg === 'string' && line.msg.startsWith('job failed')) failed++
  }
  return { succeeded, failed }
}

/** Schedules `count` jobs on a container lane running the same container; resolves to jobs finished per second. */
async function throughRunner(url: string, image: string, count: number, concurrency: number): Promise<number> {
  const dir = tempDir('dispenserd-bench-containers-')
  const config = path.join(dir, 'config.json')
  const lane = { runner: 'container', engine: url, image, command: ['true'], concurrency, keep_exited_for: 0, labels: LABELS, namespace: path.basename(dir) }
  writeFileSync(config, JSON.stringify({ lanes: { bench: lane } }))
  const server = await startDispenserd(['--config', config], path.join(dir, 'data'))
  try {
    const began = performance.now()
    await fetch(`http://127.0.0.1:${server.port}/schedule`, {
      method: 'POST',
      body: JSON.stringify({ jobs: Array.from({ length: count }, () => ({ lane: 'bench', message: '{}' })) }),
    })
    for (;;) {
      const { succeeded, failed } = ended(server.lines)
      if (failed > 0) throw new Error(`${failed} container jobs failed`)
      if (succeeded >= count) break
      await new Promise((r) => setTimeout(r, 10))
    }
    return count / ((performance.now() - began) / 1000)
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function containers(opts: { rounds: number; jobs: number; concurrency: number[] }): Promise<Section> {
  const { url, image, stop } = engine()
  const rows: Row[] = []
  try {
    for (const concurrency of opts.concurrency) {
      const bare: number[] = []
      const ours: number[] = []
      for (let round = 0; round < opts.rounds; round++) {
        // Which goes first alternates: the engine's speed drifts over a run (its storage and event
        // log grow), and a fixed order would hand that drift to one side.
        const measureBare = async (): Promise<void> => {
          bare.push(await bareLoop(url, image, opts.jobs, concurrency))
        }
        const measureOurs = async (): Promise<void> => {
          ours.push(await throughRunner(url, image, opts.jobs, concurrency))
        }
        for (const measure of round % 2 === 0 ? [measureBare, measureOurs] : [measureOurs, measureBare]) await measure()
      }
      const reference = `bare loop: create, start, wait, remove (concurrency ${concurrency})`
      rows.push({ workload: 'containers', subject: reference, value: median(bare), unit: 'containers/s' })
      rows.push({
        workload: 'containers',
        subject: `dispenserd container runner, keep_exited_for 0, concurrency ${concurrency}`,
        value: median(ours),
        unit: 'jobs/s',
        ratio: { against: reference, value: median(ours) / median(bare) },
      })
    }
  } finally {
    stop()
  }
  return { rows, checks: [] }
}
