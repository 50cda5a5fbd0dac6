import { allRunnerLanes } from './config'
import { loadConfig } from './config-file'
import { createLogger } from './log'
import { checkTlsFiles, tlsFiles } from './http/tls'
import { createRunner } from './runners/registry'

/**
 * `dispenserd config check FILE`: everything a start would check of the configuration, without
 * touching the data directory or the address: the file as a whole, the environment's
 * DISPENSERD_* variables, and each runner lane's runner (its command found and executable, its
 * module loaded). Returns the exit code: 0 when the daemon would accept it, 1 otherwise.
 */
export function checkConfigFile(file: string, out: (line: string) => void, err: (line: string) => void): number {
  try {
    const { config, warnings } = loadConfig({ config: file })
    const tls = tlsFiles(config)
    if (tls !== undefined) checkTlsFiles(tls)
    const logger = createLogger('silent')
    // Dispatch Jobs' runner needs the data directory's mirrors; its settings were checked above.
    for (const spec of allRunnerLanes(config)) if (spec.runner !== 'dispatch') createRunner(spec, config.root, logger)
    for (const warning of warnings) err(`warning: ${warning}`)
    const lanes = allRunnerLanes(config).map((lane) => `${lane.lane} (${lane.runner}, concurrency ${lane.concurrency})`)
    out(`${file}: ok`)
    out(`  address ${config.address}, data directory ${config.data_dir}, persistence ${config.persist_queue ? config.persistence : 'off'}, auth ${config.auth_token === '' ? 'off' : 'on'}, ${tls === undefined ? 'plain HTTP' : 'HTTPS'}`)
    out(`  runner lanes: ${lanes.length === 0 ? 'none' : lanes.join(', ')}`)
    return 0
  } catch (e) {
    err(`dispenserd: ${(e as Error).message}`)
    return 1
  }
}
