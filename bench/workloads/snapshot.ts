import { spawn } from 'node:child_process'
import { rmSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import path from 'node:path'
import { Connection, httpFrame } from '../lib/clients'
import { BINARY, ROOT, type Server, freePort, removeDataDir, startDispenserd, tempDir } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { median } from '../lib/tools'
import { fillDispenserd } from './throughput'

const STATUS = Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n')

function logged(server: Server, msg: string): Record<string, unknown> | undefined {
  return server.lines.find((l) => l.msg === msg)
}

/**
 * With `count` jobs queued: how long the periodic snapshot takes, the longest a status request
 * (sent every 10 ms meanwhile) waited, the size of queue.json, and how long a restart takes to load it.
 */
export async function snapshot(count: number): Promise<Section> {
  const workload = `snapshot (${count >= 1e6 ? `${count / 1e6}M` : `${count / 1e3}k`} jobs)`
  const interval = Math.max(5, Math.ceil(count / 250_000) + 3)
  const dataDir = tempDir('dispenserd-bench-snap-')
  const ours = await startDispenserd(['--persist-interval', String(interval)], dataDir)
  const started = Date.now()
  let slowest = 0
  try {
    await fillDispenserd(ours.port, count)
    if (logged(ours, 'snapshot written') !== undefined || Date.now() - started > interval * 1000) {
      throw new Error('snapshot: filling took longer than the snapshot interval')
    }
    const conn = await Connection.open(ours.port, httpFrame)
    while (logged(ours, 'snapshot written') === undefined) {
      const sent = performance.now()
      await conn.request(STATUS)
      slowest = Math.max(slowest, performance.now() - sent)
      await new Promise((r) => setTimeout(r, 10))
      if (Date.now() - started > (interval + 120) * 1000) throw new Error('snapshot: none written')
    }
    conn.close()
  } finally {
    await ours.stop()
  }
  const written = logged(ours, 'snapshot written')!
  const bytes = statSync(path.join(dataDir, 'queue.json')).size

  // Restart on the same directory: time to load, and from spawn to serving.
  const spawnedAt = performance.now()
  const again = await startDispenserd([], dataDir)
  const serving = performance.now() - spawnedAt
  const loaded = logged(again, 'queue loaded')!
  await again.stop()
  removeDataDir(again)

  const rows: Row[] = [
    { workload, subject: 'written in', value: Number(written.duration_ms) / 1000, unit: 's' },
    { workload, subject: 'longest status wait while writing', value: slowest, unit: 'ms' },
    { workload, subject: 'queue.json size', value: bytes / 1e6, unit: 'MB' },
    { workload, subject: 'loaded at start in', value: Number(loaded.duration_ms) / 1000, unit: 's' },
    { workload, subject: 'restart: spawn to serving', value: serving / 1000, unit: 's' },
  ]
  if (Number(loaded.jobs) !== count) throw new Error(`snapshot: restored ${String(loaded.jobs)} of ${count} jobs`)
  const checks =
    count === 1_000_000
      ? [
          { target: 'snapshot of 1M jobs: no event-loop stall over 50 ms', measured: `longest status wait ${slowest.toFixed(1)} ms`, met: slowest <= 50 },
          { target: 'snapshot of 1M jobs written in ≤ 5 s', measured: `${(Number(written.duration_ms) / 1000).toFixed(2)} s`, met: Number(written.duration_ms) <= 5000 },
          { target: 'snapshot of 1M jobs loaded at start in ≤ 1 s', measured: `${(Number(loaded.duration_ms) / 1000).toFixed(2)} s`, met: Number(loaded.duration_ms) <= 1000 },
        ]
      : [{ target: `snapshot of ${count.toLocaleString('en-US')} jobs is written and loads back whole`, measured: `${Number(loaded.jobs).toLocaleString('en-US')} jobs restored`, met: true }]
  return { rows, checks }
}

/** Milliseconds from spawning `command` until it answers GET / on `port`. */
async function timeToFirstAnswer(command: string[], port: number): Promise<number> {
  const started = performance.now()
  const proc = spawn(command[0]!, command.slice(1), { stdio: 'ignore' })
  try {
    for (;;) {
      const answered = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1')
        socket.once('error', () => resolve(false))
        socket.once('connect', () => socket.write(STATUS))
        socket.once('data', (d) => {
          socket.destroy()
          resolve(d.toString('latin1', 0, 12).includes('200'))
        })
      })
      if (answered) return performance.now() - started
      if (performance.now() - started > 10_000) throw new Error(`${command[0]} did not answer in 10 s`)
      await new Promise((r) => setTimeout(r, 2))
    }
  } finally {
    proc.kill('SIGKILL')
    await new Promise((r) => proc.once('exit', r))
  }
}

/** bin/dispenserd on an empty data directory versus the bare uWS server, from spawn to first answer. */
export async function startup(runs: number): Promise<Section> {
  const ours: number[] = []
  const ceiling: number[] = []
  for (let i = 0; i < runs; i++) {
    const dir = tempDir('dispenserd-bench-start-')
    const port = await freePort()
    ours.push(await timeToFirstAnswer([BINARY, '--address', `127.0.0.1:${port}`, '--data-dir', dir], port))
    rmSync(dir, { recursive: true, force: true })
    const port2 = await freePort()
    ceiling.push(await timeToFirstAnswer([process.execPath, path.join(ROOT, 'dist', 'bench', 'ceiling.js'), String(port2)], port2))
  }
  const oursMs = median(ours)
  const ceilingMs = median(ceiling)
  return {
    rows: [
      { workload: 'startup (empty queue)', subject: 'bin/dispenserd: spawn to first answer', value: oursMs, unit: 'ms', ratio: { against: 'bare uWS server on node', value: oursMs / ceilingMs } },
      { workload: 'startup (empty queue)', subject: 'bare uWS server on node: spawn to first answer', value: ceilingMs, unit: 'ms' },
    ],
    checks: [{ target: 'bin/dispenserd serves its first request within 0.5 s of starting', measured: `${oursMs.toFixed(0)} ms (median of ${runs})`, met: oursMs <= 500 }],
  }
}
