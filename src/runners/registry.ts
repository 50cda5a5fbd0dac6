import type { Logger } from '../log'
import { type DispatchRepos, createDispatchRunner } from './dispatch'
import { createContainerRunner } from './container'
import { createExecRunner } from './exec'
import { createHttpRunner } from './http'
import { loadRunnerModule } from './module'
import { LaneConfigError, type RunnerLane, isModulePath } from './lanes'
import type { Runner, RunnerOptions } from './runner'

/** Built-in runners by name; anything that looks like a path is a user's module. */
const BUILT_IN: Record<string, (options: RunnerOptions) => Runner> = {
  exec: createExecRunner,
  http: createHttpRunner,
  container: createContainerRunner,
}

/** Builds the runner of a lane; any problem stops the daemon with a message naming the lane. */
export function createRunner(spec: RunnerLane, root: string, logger: Logger, dispatch?: DispatchRepos): Runner {
  const options: RunnerOptions = { lane: spec.lane, config: spec.config, root, logger: logger.child({ lane: spec.lane, runner: spec.runner }) }
  try {
    if (spec.runner === 'dispatch' && dispatch !== undefined) return createDispatchRunner(dispatch)
    const builtIn = BUILT_IN[spec.runner]
    if (builtIn !== undefined) return builtIn(options)
    if (isModulePath(spec.runner)) return loadRunnerModule(spec.runner, options)
    throw new Error(`unknown runner ${JSON.stringify(spec.runner)} (built in: ${Object.keys(BUILT_IN).join(', ')}; or the path of a module, such as "./runners/mine.js")`)
  } catch (err) {
    throw new LaneConfigError(`lane ${JSON.stringify(spec.lane)}: ${(err as Error).message}`)
  }
}
