#!/usr/bin/env node
import { Command, Option } from 'commander'
import { type ResolvedConfig, SETTINGS, envName } from './config'
import { type Flags, loadConfig } from './config-file'
import { type Logger, createLogger } from './log'
import type { Daemon } from './main'
import { version } from '../package.json'
import { EXIT, addClientCommands } from './client/commands'
import { checkConfigFile } from './config-check'
import { isAlive, readPid } from './persist/pidfile'
import { daemonize } from './daemonize'

/**
 * The only reader of process.argv: turns flags, environment and config file into a Config and
 * runs the daemon (or `-d`, `stop`); the other subcommands are the command-line client
 * (client/commands.ts) and `config check`.
 */

function buildProgram(): Command {
  const program = new Command('dispenserd')
    .description('an in-memory HTTP/JSON job queue daemon, and its command-line client')
    .version(version)
    // A mistake on the command line exits 2, apart from the daemon's own failures (1).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage))
    .option('--config <file>', `config file (env DISPENSERD_CONFIG; default: ROOT/config/config.json if present)`)
    .option('-d, --daemon', 'start in the background; returns once the daemon answers')
    .addHelpText('after', `\nEvery setting can also be given as DISPENSERD_<KEY> (e.g. DISPENSERD_ADDRESS).\nPrecedence: flag > environment > config file > default. ROOT is $DISPENSERD_ROOT or the current directory.`)
  for (const setting of SETTINGS) {
    const env = envName(setting)
    if (setting.kind.type === 'boolean') {
      program.addOption(new Option(`--${setting.flag}`, `${setting.help} (env ${env})`))
      program.addOption(new Option(`--no-${setting.flag}`, `turn --${setting.flag} off`))
    } else {
      program.addOption(new Option(`--${setting.flag} <${setting.arg ?? 'value'}>`, `${setting.help} (env ${env})`))
    }
  }
  program
    .command('stop')
    .description('stop a background daemon (SIGTERM) and wait until its final snapshot is written')
    .option('--timeout <seconds>', 'how long to wait', '600')
    .action(async (opts: { timeout: string }, cmd: Command) => {
      process.exitCode = await stop(loadConfig(cmd.optsWithGlobals()), Number(opts.timeout))
    })
  program
    .command('migrate')
    .description('move the jobs of DATA_DIR (queue.json, dead.json, journal) into the Redis store given by --redis-url or --redis-cluster and --redis-prefix, keeping order, priorities, job numbers and hashes')
    .action(async (_opts: unknown, cmd: Command) => {
      const { config } = loadConfig(cmd.optsWithGlobals())
      // Loaded here, as the server is: the client commands need none of it.
      const { migrate } = require('./migrate') as typeof import('./migrate')
      process.exitCode = await migrate(config, createLogger(config.log_level, config.log_format))
    })
  program
    .command('config')
    .description('configuration tools')
    .command('check <file>')
    .description('check a config file (and the DISPENSERD_* environment) as a start would, without starting')
    .action((file: string) => {
      process.exitCode = checkConfigFile(file, (line) => process.stdout.write(`${line}\n`), (line) => process.stderr.write(`${line}\n`))
    })
  addClientCommands(program)
  program.action(async (flags: Flags) => {
    const resolved = loadConfig(flags)
    // A reload reads the same file; one that was there at start and is gone is an error, not defaults.
    const reread = (): ResolvedConfig => loadConfig(flags, resolved.file !== undefined)
    process.exitCode = flags.daemon === true ? await daemonize(resolved.config) : await runForeground(resolved, reread)
  })
  return program
}

/** Runs the daemon until SIGTERM or SIGINT; SIGHUP reads the configuration again (`reread`). */
async function runForeground({ config, warnings }: ResolvedConfig, reread: () => ResolvedConfig): Promise<number> {
  const logger = createLogger(config.log_level, config.log_format)
  for (const warning of warnings) logger.warn(warning)
  // Installed first: SIGHUP's default is to end the process, and a start can take a while.
  let daemon: Daemon | undefined
  let reloadWhenStarted = false
  process.on('SIGHUP', () => {
    if (daemon === undefined) {
      reloadWhenStarted = true
      logger.info('SIGHUP while starting: the configuration is read again once the daemon listens')
      return
    }
    reload(daemon, reread, logger)
  })
  // Loaded here, not at the top: the client commands need none of the server (nor its native addon).
  const { startDaemon } = require('./main') as typeof import('./main')
  daemon = await startDaemon(config, logger)
  if (reloadWhenStarted) reload(daemon, reread, logger)
  // Tell a `-d` parent we are serving, then cut the channel so it can exit.
  if (process.send !== undefined) {
    process.send({ ready: true, port: daemon.port })
    process.disconnect()
  }
  return new Promise((resolve) => {
    let faulted = false
    const stop = (reason: string): void => {
      daemon.shutdown(reason).then(
        (code) => resolve(faulted ? 1 : code),
        (err: unknown) => {
          logger.fatal({ err }, 'shutdown failed')
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    // A rejection nobody handled or an exception nobody caught is a bug, and what it interrupted
    // (a reply, a slot parking again, a lease ending) is left undone: the queue can no longer be
    // vouched for. Node would exit on the spot and lose every change since the last snapshot.
    // Instead: say what happened, then stop as SIGTERM does (runs finish or go back, final
    // snapshot), and exit 1 so a supervisor starts the daemon again.
    const onFault = (kind: string) => (err: unknown) => {
      logger.fatal({ err }, `${kind}: ${faulted ? 'already stopping' : 'stopping cleanly, with a final snapshot, then exiting with code 1'}`)
      faulted = true
      stop(kind)
    }
    process.on('unhandledRejection', onFault('unhandled rejection'))
    process.on('uncaughtException', onFault('uncaught exception'))
  })
}

/** Same sources as at start (flags and environment keep their precedence); a bad file changes nothing. */
function reload(daemon: Daemon, reread: () => ResolvedConfig, logger: Logger): void {
  let next: ResolvedConfig
  try {
    next = reread()
  } catch (err) {
    logger.error({ reason: (err as Error).message }, 'configuration not reloaded; the settings in effect stay as they are')
    return
  }
  for (const warning of next.warnings) logger.warn(warning)
  try {
    daemon.reload(next.config)
  } catch (err) {
    // A reload must never take the daemon down; whatever it did apply stays, and says so here.
    logger.error({ err }, 'configuration reload failed part way')
  }
}

async function stop(resolved: ResolvedConfig, timeoutSeconds: number): Promise<number> {
  const pidFile = resolved.config.pid_file
  const pid = readPid(pidFile)
  if (pid === undefined || !isAlive(pid)) {
    process.stderr.write(`no dispenserd is running (pid file ${pidFile} ${pid === undefined ? 'missing' : `names pid ${pid}, which is gone`})\n`)
    return 1
  }
  process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + timeoutSeconds * 1000
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.stderr.write(`dispenserd (pid ${pid}) is still running after ${timeoutSeconds} s\n`)
      return 1
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  if (readPid(pidFile) === pid) {
    process.stderr.write(`dispenserd (pid ${pid}) exited without a clean shutdown; see ${resolved.config.log_file}\n`)
    return 1
  }
  process.stdout.write(`dispenserd (pid ${pid}) stopped\n`)
  return 0
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    // Configuration, snapshot, lock and listen failures all end here: say what, then exit non-zero
    // at once, whatever a half-done start left open (a timer, a journal file, a runner module).
    process.stderr.write(`dispenserd: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
