import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type * as UwsModule from 'uWebSockets.js'
import { singleExecutable } from '../sea'

/** The asset name under which `./build` embeds the native addon in the single executable. */
export const UWS_ASSET = 'uws.node'

/**
 * Loads uWebSockets.js. In the single executable the native addon rides along as an asset: it is
 * written to a private temporary directory (one per process, so two copies starting together do
 * not collide), loaded, and deleted at once (a loaded shared object needs no file), so nothing is
 * left behind. Elsewhere it is the npm package.
 */
function load(): typeof UwsModule {
  const sea = singleExecutable()
  if (sea === undefined) return require('uWebSockets.js') as typeof UwsModule
  const dir = mkdtempSync(path.join(tmpdir(), 'dispenserd-uws-'))
  try {
    const file = path.join(dir, UWS_ASSET)
    writeFileSync(file, new Uint8Array(sea.getAsset(UWS_ASSET)), { mode: 0o700 })
    const addon = { exports: {} as typeof UwsModule }
    process.dlopen(addon, file)
    return addon.exports
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const uWS = load()
