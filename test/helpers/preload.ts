import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/**
 * A shared library for LD_PRELOAD built from a C file beside this one (gcc), once per content,
 * into the temp directory: the real daemon runs with it to have a system call paused, failed or
 * counted.
 */
export function preloadLibrary(name: string): string {
  const source = readFileSync(path.join(__dirname, `${name}.c`))
  const out = path.join(tmpdir(), `dispenserd-${name}-${createHash('sha256').update(source).digest('hex').slice(0, 12)}.so`)
  if (!existsSync(out)) {
    const partial = `${out}.${process.pid}`
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', partial, path.join(__dirname, `${name}.c`), '-ldl', '-lpthread'])
    renameSync(partial, out)
  }
  return out
}
