import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { removeDir } from './daemon'

/** Debian's chromium, headless, with a fresh profile; closed (and its profile removed) by the test's teardown. */
export async function browser(t: { teardown(fn: () => Promise<void>): void }): Promise<BrowserContext> {
  const profile = mkdtempSync(path.join(tmpdir(), 'dispenserd-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  t.teardown(async () => {
    await context.close()
    removeDir(profile)
  })
  return context
}
