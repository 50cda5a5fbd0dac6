import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { startDispenserd, tempDir } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { median } from '../lib/tools'

/**
 * Jobs per second through the exec runner with a trivial program (/bin/true), against the
 * reference measured in the same run: a bare Node loop spawning the same program with the same
 * concurrency and the same pipes. What is left between the two is the daemon's own cost per job
 * (taking the job, the lease, the result, the bookkeeping); the rest is process creation.
 */

const PROGRAM = '/bin/true'

/** Spawns PROGRAM `count` times, `concurrency` at a time; resolves to spawns per second. */
function bareSpawns(count: number, concurrency: number): Promise<number> {
  return new Promise((resolve) => {
    let started = 0
    let finished = 0
    const began = performance.now()
    const one = (): void => {
      if (started >= count) return
      started++
      const child = spawn(PROGRAM, [], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout.resume()
      child.stderr.resume()
      child.once('close', () => {
        if (++finished === count) resolve(count / ((performance.now() - began) / 1000))
        else one()
      })
    }
    for (let i = 0; i < concurrency; i++) one()
  })
}

async function post(port: number, urlPath: string, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { method: 'POST', body: JSON.stringify(body) })
  if (res.status !== 200) throw new Error(`${urlPath} answered ${res.status}: ${await res.text()}`)
}

async function succeeded(port: number): Promise<number> {
  const status = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { payload: { runners: Record<string, { succeeded: number }> } }
  return status.payload.runners.bench!.succeeded
}

/** Schedules `count` jobs on an exec lane and resolves to jobs finished per second. */
async function throughRunner(count: number, concurrency: number): Promise<number> {
  const dir = tempDir('dispenserd-bench-runners-')
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { bench: { runner: 'exec', command: [PROGRAM], concurrency, allowed_env: ['N'] } } }))
  // The default log level: a line per finished job is part of what a runner lane costs.
  const server = await startDispenserd(['--config', config], path.join(dir, 'data'))
  try {
    const message = JSON.stringify({ arguments: { N: '1' } })
    const began = performance.now()
    for (let sent = 0; sent < count; sent += 1000) {
      await post(server.port, '/schedule', { jobs: Array.from({ length: Math.min(1000, count - sent) }, () => ({ lane: 'bench', message })) })
    }
    while ((await succeeded(server.port)) < count) await new Promise((r) => setTimeout(r, 10))
    return count / ((performance.now() - began) / 1000)
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function runners(opts: { rounds: number; jobs: number; concurrency: number[] }): Promise<Section> {
  const rows: Row[] = []
  for (const concurrency of opts.concurrency) {
    const bare: number[] = []
    const ours: number[] = []
    for (let round = 0; round < opts.rounds; round++) {
      bare.push(await bareSpawns(opts.jobs, concurrency))
      ours.push(await throughRunner(opts.jobs, concurrency))
    }
    const reference = `bare node spawn of ${PROGRAM} (concurrency ${concurrency})`
    rows.push({ workload: 'runners', subject: reference, value: median(bare), unit: 'spawns/s' })
    rows.push({
      workload: 'runners',
      subject: `dispenserd exec runner, ${PROGRAM}, concurrency ${concurrency}`,
      value: median(ours),
      unit: 'jobs/s',
      ratio: { against: reference, value: median(ours) / median(bare) },
    })
  }
  return { rows, checks: [] }
}
