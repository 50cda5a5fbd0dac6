import { readFileSync } from 'node:fs'
import { Command, InvalidArgumentError, Option } from 'commander'
import { CODE, ConnectionError, DEFAULT_URL, DispenserdClient, DispenserdError } from './client'
import { describeJob, formatFailed, formatJobDetail, formatJobs, formatStatus } from './output'
import { readJobLines, scheduleLines } from './stdin'
import type { JobDetail, LeasedJob, NewJob } from './types'

/**
 * The command-line client: subcommands of `dispenserd` that talk HTTP to a running daemon. Human
 * output by default, the daemon's JSON replies with `--json`; the exit code says how it went.
 */

/** Exit codes (README "Command-line client"). */
export const EXIT = { ok: 0, daemonError: 1, usage: 2, unreachable: 3, empty: 4, dead: 5 } as const

interface Common {
  url?: string
  token?: string
  ca?: string
  json?: boolean
}

interface Context {
  client: DispenserdClient
  json: boolean
  /** Columns for human output. */
  width: number
}

/** A usage mistake found after parsing (exit 2). */
class UsageError extends Error {}

function context(opts: Common): Context {
  const url = opts.url ?? process.env.DISPENSERD_URL ?? DEFAULT_URL
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url: expected http://host:port or https://host:port, got ${JSON.stringify(url)}`)
  const caFile = opts.ca ?? process.env.DISPENSERD_CA
  let ca: Buffer | undefined
  if (caFile !== undefined && caFile !== '') {
    try {
      ca = readFileSync(caFile)
    } catch (err) {
      throw new UsageError(`--ca: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
  }
  return { client: new DispenserdClient({ url, token: opts.token ?? process.env.DISPENSERD_TOKEN, ca }), json: opts.json === true, width: process.stdout.columns ?? 100 }
}

function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

function note(text: string): void {
  process.stderr.write(`${text}\n`)
}

/** Runs a client command: failures become a message on stderr and a meaningful exit code. */
function run(action: (ctx: Context, ...args: never[]) => Promise<number | void>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command
    let ctx: Context | undefined
    try {
      ctx = context(cmd.optsWithGlobals<Common>())
      process.exitCode = (await action(ctx, ...(args.slice(0, -1) as never[]))) ?? EXIT.ok
    } catch (err) {
      process.exitCode = failure(err, ctx?.json === true)
    }
  }
}

function failure(err: unknown, json: boolean): number {
  if (err instanceof DispenserdError) {
    if (json) print(JSON.stringify({ status: 'error', code: err.code, message: err.message }))
    note(`dispenserd: ${err.message} (code ${err.code}, HTTP ${err.httpStatus})`)
    return EXIT.daemonError
  }
  note(`dispenserd: ${(err as Error).message}`)
  if (err instanceof ConnectionError) return EXIT.unreachable
  if (err instanceof UsageError) return EXIT.usage
  return EXIT.daemonError
}

/** A subcommand with the options every client command takes. */
function clientCommand(program: Command, spec: string, description: string): Command {
  return program
    .command(spec)
    .description(description)
    .option('--url <url>', `the daemon (env DISPENSERD_URL; default ${DEFAULT_URL})`)
    .option('--token <token>', "the daemon's auth_token (env DISPENSERD_TOKEN)")
    .option('--ca <file>', 'https: a certificate authority to trust, for a self-signed daemon (PEM; env DISPENSERD_CA)')
    .option('--json', "print the daemon's JSON replies (one per line) instead of text")
}

function seconds(name: string) {
  return (text: string): number => {
    const value = Number(text)
    if (text.trim() === '' || !Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`--${name}: expected a number of seconds`)
    return value
  }
}

function integer(name: string) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`--${name}: expected a whole number`)
    return Number(text)
  }
}

export function addClientCommands(program: Command): void {
  // `dispenserd jobs | head`: a reader that stops early is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok)
    throw err
  })
  addStatus(program)
  clientCommand(program, 'jobs [lane]', "list every lane's ready jobs in serving order (or one lane's)")
    .action(run(async ({ client, json, width }, lane: string | undefined) => {
      const all = await client.jobs()
      const shown = lane === undefined ? all : { [lane]: all[lane] ?? [] }
      print(json ? JSON.stringify(shown) : formatJobs(shown, width))
    }))
  addSchedule(program)
  addReceive(program)
  addLeaseCommands(program)
  clientCommand(program, 'job <hash>', 'show a job by hash: its state, attempts and last run')
    .addOption(new Option('--wait [seconds]', 'runner lanes: wait until the job has succeeded (exit 0) or is dead (exit 5), at most this long').argParser(seconds('wait')))
    .action(run(async ({ client, json, width }, hash: string, opts: { wait?: number | true }) => {
      const job = opts.wait === undefined ? await client.job(hash) : await finished(client, hash, opts.wait === true ? Infinity : opts.wait)
      print(json ? JSON.stringify(job) : formatJobDetail(job, width))
      return opts.wait !== undefined && job.state === 'dead' ? EXIT.dead : EXIT.ok
    }))
  clientCommand(program, 'retry <hash>', 'queue a dead job again, its attempts counted afresh')
    .action(run(async ({ client, json }, hash: string) => {
      const job = await client.retry(hash)
      print(json ? JSON.stringify(job) : `job ${job.job_num} queued again`)
    }))
  clientCommand(program, 'delete <hash>', 'delete a queued (runner lane), delayed or dead job for good')
    .action(run(async ({ client, json }, hash: string) => {
      const job = await client.delete(hash)
      print(json ? JSON.stringify(job) : `job ${job.job_num} deleted`)
    }))
  for (const [name, description] of [
    ['pause', 'pause a lane: it serves no receiver and starts no run until resumed (kept across restarts)'],
    ['resume', 'resume a paused lane'],
  ] as const) {
    clientCommand(program, `${name} <lane>`, description).action(
      run(async ({ client, json }, lane: string) => {
        const state = name === 'pause' ? await client.pause(lane) : await client.resume(lane)
        print(json ? JSON.stringify(state) : `lane ${state.lane} ${state.paused ? 'paused' : 'resumed'}`)
      }),
    )
  }
  clientCommand(program, 'failed', "list a lane's dead jobs, newest first")
    .option('--lane <lane>', 'the lane', 'main')
    .option('--offset <n>', 'skip this many', integer('offset'), 0)
    .option('--limit <n>', 'show at most this many (1-1000)', integer('limit'), 50)
    .action(run(async ({ client, json, width }, opts: { lane: string; offset: number; limit: number }) => {
      const page = await client.failed(opts.lane, opts.offset, opts.limit)
      print(json ? JSON.stringify(page) : formatFailed(page, width))
    }))
}

/** Polls a runner lane's job until it has succeeded or is dead, or `seconds` have passed. */
async function finished(client: DispenserdClient, hash: string, seconds: number): Promise<JobDetail> {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    const job = await client.job(hash)
    if (job.state === 'succeeded' || job.state === 'dead' || Date.now() >= deadline) return job
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

function addStatus(program: Command): void {
  clientCommand(program, 'status', "the daemon's lanes, jobs, receivers, runners and persistence")
    .addOption(new Option('--watch [seconds]', 'redraw every few seconds until Ctrl-C').argParser(seconds('watch')).preset(2))
    .action(run(async ({ client, json }, opts: { watch?: number }) => {
      const show = async (): Promise<void> => {
        const status = await client.status()
        print(json ? JSON.stringify(status) : formatStatus(status, client.url))
      }
      if (opts.watch === undefined) return show()
      const tty = process.stdout.isTTY === true && !json
      for (;;) {
        if (tty) process.stdout.write('\x1b[H\x1b[2J')
        try {
          await show()
        } catch (err) {
          // Keep watching through a restart of the daemon.
          if (!(err instanceof ConnectionError)) throw err
          note(`${new Date().toISOString()} ${err.message}`)
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0.1, opts.watch!) * 1000))
      }
    }))
}

interface ScheduleOptions {
  lane?: string
  priority?: number
  delay?: number
  arguments?: string
  arg: string[]
  batchSize: number
}

function addSchedule(program: Command): void {
  clientCommand(program, 'schedule [message]', 'queue a job; without MESSAGE, one job per line of standard input, sent in batches')
    .option('--lane <lane>', 'the lane (default main)')
    .option('--priority <n>', 'lower is served first (default 512)', integer('priority'))
    .option('--delay <seconds>', 'hold the job back this long', seconds('delay'))
    .option('--arguments <json>', 'runner lanes: the arguments, as a JSON object')
    .option('--arg <key=value>', 'runner lanes: one argument, a string (repeatable)', (item: string, all: string[]) => [...all, item], [])
    .option('--batch-size <n>', 'jobs per request when reading standard input', integer('batch-size'), 1000)
    .action(run(async (ctx, message: string | undefined, opts: ScheduleOptions) => {
      const template: NewJob = { lane: opts.lane, priority: opts.priority, delay: opts.delay, arguments: jobArguments(opts) }
      if (message === undefined && template.arguments !== undefined) message = ''
      if (message !== undefined && message !== '-') {
        const job = await ctx.client.schedule(template.arguments === undefined ? { ...template, message } : template)
        print(ctx.json ? JSON.stringify(job) : `job ${job.job_num} queued (hash ${job.hash})`)
        return
      }
      if (template.arguments !== undefined) throw new UsageError('schedule: --arguments and --arg make one job; jobs on standard input are one message per line')
      if (process.stdin.isTTY === true) throw new UsageError('schedule: give a MESSAGE, or jobs on standard input, one per line')
      if (opts.batchSize < 1) throw new UsageError('--batch-size: expected at least 1')
      const total = await scheduleLines(ctx.client, readJobLines(process.stdin), template, opts.batchSize, (batch) => ctx.json && print(JSON.stringify(batch)))
      if (!ctx.json) print(total.count === 0 ? 'no jobs on standard input' : `${total.count} jobs queued (job numbers ${total.first}-${total.last})`)
    }))
}

function jobArguments(opts: ScheduleOptions): Record<string, unknown> | undefined {
  if (opts.arguments === undefined && opts.arg.length === 0) return undefined
  let args: Record<string, unknown> = {}
  if (opts.arguments !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(opts.arguments)
    } catch {
      parsed = undefined
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`--arguments: expected a JSON object such as '{"SRC": "a.png"}', got ${opts.arguments}`)
    args = parsed as Record<string, unknown>
  }
  for (const item of opts.arg) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new UsageError(`--arg: expected KEY=VALUE, got ${JSON.stringify(item)}`)
    args[item.slice(0, eq)] = item.slice(eq + 1)
  }
  return args
}

function addReceive(program: Command): void {
  clientCommand(program, 'receive', 'take the next job: its message on stdout, its identity on stderr')
    .option('--lane <lane>', 'the lane (default main)')
    .option('--block', 'wait for a job when the lane is empty')
    .option('--timeout <seconds>', 'with --block: give up after this long', seconds('timeout'))
    .option('--lease <seconds>', 'lease the job (then ack or release it) instead of taking it for good', seconds('lease'))
    .option('--fail-empty', 'exit 4 when there is no job (default: exit 0)')
    .action(run(async ({ client, json }, opts: { lane?: string; block?: boolean; timeout?: number; lease?: number; failEmpty?: boolean }) => {
      const job = await client.receive({ lane: opts.lane, lease: opts.lease, block: opts.block, timeout: opts.timeout })
      if (job === undefined) {
        if (json) print(JSON.stringify({ status: 'ok', code: CODE.emptyQueue, message: 'empty queue' }))
        else note(`lane ${opts.lane ?? 'main'} is empty`)
        return opts.failEmpty === true ? EXIT.empty : EXIT.ok
      }
      if (json) {
        print(JSON.stringify(job))
        return
      }
      print(job.message)
      note(describeJob(job))
      const lease = job as Partial<LeasedJob>
      if (lease.lease_token !== undefined) note(`leased until ${lease.lease_expires}: dispenserd ack ${job.hash} --lease-token ${lease.lease_token}`)
    }))
}

interface LeaseRef {
  hash: string
  token: string
}

/**
 * The lease a command names: HASH and --lease-token, or the JSON line `receive --json` printed
 * (as the argument, or on standard input when there is no argument).
 */
async function leaseRef(hash: string | undefined, token: string | undefined): Promise<LeaseRef> {
  if (hash !== undefined && !hash.trimStart().startsWith('{')) {
    if (token === undefined) throw new UsageError('give the lease token with --lease-token (the leased receive printed it), or pass the JSON line `receive --json` printed')
    return { hash, token }
  }
  let text = hash
  if (text === undefined) {
    if (process.stdin.isTTY === true) throw new UsageError('give HASH --lease-token TOKEN, or the JSON line `dispenserd receive --lease N --json` printed, on standard input')
    text = ''
    for await (const chunk of process.stdin) text += String(chunk)
  }
  let job: Partial<LeasedJob>
  try {
    job = JSON.parse(text) as Partial<LeasedJob>
  } catch {
    throw new UsageError(`expected the JSON line of a leased job (from receive --lease N --json), got ${JSON.stringify(text.slice(0, 80))}`)
  }
  if (typeof job.hash !== 'string' || typeof (token ?? job.lease_token) !== 'string') {
    throw new UsageError('the JSON has no "hash" and "lease_token": was the job received with --lease?')
  }
  return { hash: job.hash, token: (token ?? job.lease_token)! }
}

function addLeaseCommands(program: Command): void {
  const leaseCommand = (name: string, description: string): Command =>
    clientCommand(program, `${name} [hash]`, `${description} (HASH --lease-token T, or the JSON line of receive --json)`).option('--lease-token <token>', "the lease's token, from the leased receive")
  leaseCommand('ack', 'done with a leased job: it is gone for good')
    .action(run(async ({ client, json }, hash: string | undefined, opts: { leaseToken?: string }) => {
      const ref = await leaseRef(hash, opts.leaseToken)
      const job = await client.ack(ref.hash, ref.token)
      print(json ? JSON.stringify(job) : `job ${job.job_num} acked`)
    }))
  leaseCommand('release', 'put a leased job back in its lane')
    .option('--delay <seconds>', 'hold it back this long first', seconds('delay'))
    .action(run(async ({ client, json }, hash: string | undefined, opts: { leaseToken?: string; delay?: number }) => {
      const ref = await leaseRef(hash, opts.leaseToken)
      const job = await client.release(ref.hash, ref.token, opts.delay)
      print(json ? JSON.stringify(job) : `job ${job.job_num} released${opts.delay ? `, ready again in ${opts.delay} s` : ''}`)
    }))
  leaseCommand('touch', 'still working on a leased job: extend its lease')
    .option('--lease <seconds>', "the lease's new length from now (default: its original length)", seconds('lease'))
    .action(run(async ({ client, json }, hash: string | undefined, opts: { leaseToken?: string; lease?: number }) => {
      const ref = await leaseRef(hash, opts.leaseToken)
      const job = await client.touch(ref.hash, ref.token, opts.lease)
      print(json ? JSON.stringify(job) : `job ${job.job_num} leased until ${job.lease_expires}`)
    }))
}
