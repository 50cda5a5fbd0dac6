import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { type CreateRunner, type Runner, type RunnerOptions, type RunResult, checkResult } from './runner'

/**
 * A user's runner module: `"runner": "./runners/mine.js"`, resolved against the root directory.
 * It exports `createRunner(options)` (or a default export of that function) returning a Runner.
 * Loaded with createRequire on the file's own path: inside the single executable the built-in
 * `require` only reaches Node's own modules.
 */
export function loadRunnerModule(spec: string, options: RunnerOptions): Runner {
  const file = path.resolve(options.root, spec)
  if (!existsSync(file)) throw new Error(`runner module ${file} does not exist`)
  let exported: unknown
  try {
    exported = createRequire(file)(file)
  } catch (err) {
    throw new Error(`runner module ${file} failed to load: ${(err as Error).message}`)
  }
  const create = typeof exported === 'function' ? exported : createRunnerOf(exported)
  if (typeof create !== 'function') throw new Error(`runner module ${file} exports no createRunner(options) function`)
  let runner: Runner
  try {
    runner = (create as CreateRunner)(options)
  } catch (err) {
    throw new Error(`runner module ${file}: createRunner threw: ${(err as Error).message}`)
  }
  if (typeof runner !== 'object' || runner === null || typeof runner.run !== 'function') {
    throw new Error(`runner module ${file}: createRunner returned no object with a run(job, context) method`)
  }
  return guarded(runner)
}

function createRunnerOf(exported: unknown): unknown {
  if (typeof exported !== 'object' || exported === null) return undefined
  const { createRunner, default: byDefault } = exported as Record<string, unknown>
  return createRunner ?? byDefault
}

/** A user's run that throws, rejects or resolves to something else fails its job instead. */
function guarded(runner: Runner): Runner {
  return {
    async run(job, context): Promise<RunResult> {
      try {
        return checkResult(await runner.run(job, context))
      } catch (err) {
        return { status: 'failed', reason: `the runner threw: ${err instanceof Error ? err.message : String(err)}` }
      }
    },
    ...(runner.close === undefined ? {} : { close: () => runner.close!() }),
  }
}
