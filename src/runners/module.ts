import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { CreateRunner, Runner, RunnerOptions } from './runner'

/**
 * A user's runner module: `"runner": "./runners/mine.js"`, resolved against the root directory.
 * It exports `createRunner(options)` (or a default export of that function) returning a Runner.
 * Loaded with createRequire on the file's own path: inside the single executable the built-in
 * `require` only reaches Node's own modules.
 */
export function loadRunnerModule(spec: string, options: RunnerOptions): Runner {
  const file = path.resolve(options.root, spec)
  if (!existsSync(file)) throw new Error(`runner module ${file} does not exist`)
  let exported: Record<string, unknown>
  try {
    exported = createRequire(file)(file) as Record<string, unknown>
  } catch (err) {
    throw new Error(`runner module ${file} failed to load: ${(err as Error).message}`)
  }
  const create = (typeof exported === 'function' ? exported : (exported.createRunner ?? exported.default)) as CreateRunner | undefined
  if (typeof create !== 'function') throw new Error(`runner module ${file} exports no createRunner(options) function`)
  let runner: Runner
  try {
    runner = create(options)
  } catch (err) {
    throw new Error(`runner module ${file}: createRunner threw: ${(err as Error).message}`)
  }
  if (typeof runner !== 'object' || runner === null || typeof runner.run !== 'function') {
    throw new Error(`runner module ${file}: createRunner returned no object with a run(job, context) method`)
  }
  return runner
}
