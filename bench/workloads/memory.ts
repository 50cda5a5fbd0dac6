import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT, removeDataDir, rssBytes, startBeanstalkd, startDispenserd, startRedis } from '../lib/procs'
import type { Section } from '../lib/report'
import { redisCli } from '../lib/tools'
import { fillBeanstalkd, fillDispenserd, fillRedis } from './throughput'

const run = promisify(execFile)

/** Memory per queued job at `count` jobs of 64-byte messages: heap (in-process) and RSS (servers). */
export async function memory(count: number): Promise<Section> {
  const millions = (count / 1e6).toFixed(0)
  const workload = `memory (${millions}M jobs, 64-byte messages)`
  const { stdout } = await run(process.execPath, ['--expose-gc', path.join(ROOT, 'dist', 'bench', 'memory-probe.js'), String(count)], { maxBuffer: 1 << 20 })
  const probe = JSON.parse(stdout) as { ours: number; naive: number }

  const ours = await startDispenserd(['--no-persist'])
  const oursBefore = rssBytes(ours.pid)
  await fillDispenserd(ours.port, count)
  await new Promise((r) => setTimeout(r, 500))
  const oursFilled = rssBytes(ours.pid)
  const oursRss = (oursFilled - oursBefore) / count
  // What a further `count` jobs add: the per-job cost without what any process of this kind carries
  // once busy (V8's young generation and code, Redis's buffers), which the figure above spreads over the jobs.
  await fillDispenserd(ours.port, count)
  await new Promise((r) => setTimeout(r, 500))
  const oursMarginal = (rssBytes(ours.pid) - oursFilled) / count
  await ours.stop()
  removeDataDir(ours)

  const redis = await startRedis()
  const redisUsed = (): Promise<number> => redisCli(redis.port, 'INFO', 'memory').then((info) => Number(/used_memory:(\d+)/.exec(info)![1]))
  const redisBefore = await redisUsed()
  const redisRssBefore = rssBytes(redis.pid)
  await fillRedis(redis.port, count)
  const redisHeap = ((await redisUsed()) - redisBefore) / count
  const redisFilled = rssBytes(redis.pid)
  const redisRss = (redisFilled - redisRssBefore) / count
  await redisCli(redis.port, 'EVAL', `for i=1,ARGV[1] do redis.call('ZADD', KEYS[1], i % 100, string.format('%064d', i + ARGV[1])) end`, '1', 'q', String(count))
  const redisMarginal = (rssBytes(redis.pid) - redisFilled) / count
  await redis.stop()

  const bean = await startBeanstalkd()
  const beanBefore = rssBytes(bean.pid)
  await fillBeanstalkd(bean.port, count)
  const beanRss = (rssBytes(bean.pid) - beanBefore) / count
  await bean.stop()

  return {
    rows: [
      { workload, subject: 'dispenserd heap (in-process, after GC)', value: probe.ours, unit: 'bytes/job', ratio: { against: 'naive objects', value: probe.ours / probe.naive } },
      { workload, subject: 'naive object per job, hex hash and time strings (in-process, after GC)', value: probe.naive, unit: 'bytes/job' },
      { workload, subject: 'dispenserd RSS (daemon)', value: oursRss, unit: 'bytes/job', ratio: { against: 'redis RSS', value: oursRss / redisRss } },
      { workload, subject: 'redis sorted set used_memory', value: redisHeap, unit: 'bytes/job' },
      { workload, subject: 'redis RSS', value: redisRss, unit: 'bytes/job' },
      { workload, subject: `dispenserd RSS added by a second ${millions}M jobs`, value: oursMarginal, unit: 'bytes/job', ratio: { against: `redis RSS added by a second ${millions}M jobs`, value: oursMarginal / redisMarginal } },
      { workload, subject: `redis RSS added by a second ${millions}M jobs`, value: redisMarginal, unit: 'bytes/job' },
      { workload, subject: 'beanstalkd RSS', value: beanRss, unit: 'bytes/job' },
    ],
    checks: [
      { target: 'memory: ≤ 250 bytes of heap per queued job (64-byte message included)', measured: `${probe.ours.toFixed(0)} bytes/job`, met: probe.ours <= 250 },
      { target: 'memory: RSS per queued job ≤ redis RSS per job (same run)', measured: `${oursRss.toFixed(0)} against ${redisRss.toFixed(0)} bytes/job`, met: oursRss <= redisRss },
    ],
  }
}
