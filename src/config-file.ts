import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { type Config, ConfigError, type ResolvedConfig, SETTINGS, resolveConfig } from './config'

/** Flags as commander parsed them: camel-cased names, text or booleans. */
export type Flags = Record<string, string | boolean | undefined>

/**
 * Flags, environment and the config file → Config (resolveConfig checks it whole). The file is
 * `--config`, DISPENSERD_CONFIG, or ROOT/config/config.json if present; `file` in the result is the
 * file read, if any. `fileRequired`: a reload must not fall back to defaults when the file is gone.
 */
export function loadConfig(flags: Flags, fileRequired = false): ResolvedConfig & { file: string | undefined } {
  const root = path.resolve(process.env.DISPENSERD_ROOT ?? process.cwd())
  const explicit = (flags.config as string | undefined) ?? process.env.DISPENSERD_CONFIG
  const file = explicit !== undefined && explicit !== '' ? path.resolve(explicit) : path.join(root, 'config', 'config.json')
  let fileSource: { name: string; values: unknown } | undefined
  if (existsSync(file) || explicit || fileRequired) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`)
    }
    try {
      fileSource = { name: file, values: JSON.parse(text) }
    } catch (err) {
      throw new ConfigError(`${file}: not valid JSON: ${(err as Error).message}`)
    }
  }
  const byKey: Partial<Record<keyof Config, string | boolean>> = {}
  for (const setting of SETTINGS) {
    const value = flags[camel(setting.flag)]
    if (value !== undefined) byKey[setting.key] = value
  }
  return { ...resolveConfig({ flags: byKey, env: process.env, file: fileSource, root, cwd: process.cwd() }), file: fileSource?.name }
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}
