/** The parts of `node:sea` we use; the module exists from Node 20.12. */
export interface SeaApi {
  isSea(): boolean
  getAsset(name: string): ArrayBuffer
}

/** `node:sea` when this is a single executable (bin/dispenserd), otherwise undefined. */
export function singleExecutable(): SeaApi | undefined {
  try {
    // A plain require: a static import would fail to load on Node versions without the module.
    const sea = require('node:sea') as SeaApi
    return sea.isSea() ? sea : undefined
  } catch {
    return undefined
  }
}
