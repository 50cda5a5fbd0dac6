import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { singleExecutable } from '../sea'

/** The dashboard's files, by the name under /ui/ they are served at, with their types. */
export const UI_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
}

/** The asset name under which `./build` embeds a dashboard file in the single executable. */
export function uiAsset(name: string): string {
  return `ui/${name}`
}

/**
 * The dashboard's files, read once: from the single executable's assets in bin/dispenserd, else
 * from dist/ui/ (where ./build writes them; `node dist/src/cli.js`). Missing files (a build
 * without the dashboard) leave it out: /ui then answers 404.
 */
export function loadUiFiles(): Map<string, Buffer> {
  const sea = singleExecutable()
  const files = new Map<string, Buffer>()
  const dir = path.resolve(__dirname, '..', '..', 'ui')
  for (const name of Object.keys(UI_FILES)) {
    if (sea !== undefined) {
      try {
        files.set(name, Buffer.from(sea.getAsset(uiAsset(name))))
      } catch {
        // Not embedded: served without it.
      }
    } else if (existsSync(path.join(dir, name))) {
      files.set(name, readFileSync(path.join(dir, name)))
    }
  }
  return files
}
