import path from 'node:path'
import type { Page } from 'playwright-core'
import t from 'tap'
import { type Running, ROOT, call, tempDir, until } from './helpers/daemon'
import { browser } from './helpers/browser'
import { parseSamples, valueOf } from './helpers/metrics-text'
import { daemonWithScriptLane } from './helpers/runner-lane'

/**
 * The dashboard at /ui, served from bin/dispenserd, in a real browser (Debian's chromium driven by
 * playwright-core): it asks for the token, loads every page without a console error, shows counts
 * that change live, and its bulk retry and pause take effect on the daemon. Screenshots of each
 * page go to a temporary directory, or to docs/ with DISPENSERD_SCREENSHOTS=docs.
 */

/** What the functions run in the page use of it (the tests are type-checked without the DOM's types). */
interface InPage {
  document: { querySelector(selector: string): { textContent: string | null } | null; querySelectorAll(selector: string): { length: number } }
  __owned?: number
  WebSocket: new (url: string) => { onopen: () => void; onmessage: () => void; onclose: (e: { code: number }) => void; send(text: string): void }
}

const TOKEN = 'ui-secret'
const auth = { headers: { authorization: `Bearer ${TOKEN}` } }
const shots = process.env.DISPENSERD_SCREENSHOTS === 'docs' ? path.join(ROOT, 'docs') : tempDir('dispenserd-shots-')

let d: Running
let page: Page
const consoleErrors: string[] = []

async function api(endpoint: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await call(`${d.url}${endpoint}`, body, { ...auth, method: body === undefined ? 'GET' : 'POST' })
  if (r.status !== 200) throw new Error(`${endpoint}: ${r.text}`)
  return r.body
}

async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const r = await fetch(`${d.url}/metrics`, auth)
  return valueOf(parseSamples(await r.text()), name, labels)
}

t.before(async () => {
  // Jobs on "work" fail (exit 3) until the file named by their FLAG exists.
  d = await daemonWithScriptLane(t, 'work', '[ -e "$FLAG" ] && exit 0\necho "not yet: $FLAG"\nexit 3', { spec: { allowed_env: ['FLAG'], concurrency: 2 }, env: { DISPENSERD_AUTH_TOKEN: TOKEN } })
  const context = await browser(t)
  page = await context.newPage()
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text())
  })
  page.on('pageerror', (err) => consoleErrors.push(err.message))
})

t.test('the page asks for the token once, then shows every lane', async (t) => {
  await api('/schedule', { jobs: [{ message: 'resize 1.png', priority: 10 }, { message: 'resize 2.png' }, { lane: 'video', message: 'transcode a.mp4' }] })
  await page.goto(`${d.url}/ui/`)
  await page.waitForSelector('form.token')
  await page.fill('form.token input', TOKEN)
  await page.click('form.token button')
  await page.waitForSelector('tr[data-lane="main"] td.ready')
  t.equal(await page.textContent('tr[data-lane="main"] td.ready'), '2')
  t.equal(await page.textContent('tr[data-lane="video"] td.ready'), '1')
})

t.test('live counts change when jobs are scheduled', async (t) => {
  await page.waitForSelector('.dot.live')
  await api('/schedule', { jobs: Array.from({ length: 5 }, (_, i) => ({ message: `more ${i}` })) })
  await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelector('tr[data-lane="main"] td.ready')?.textContent === '7', undefined, { timeout: 10_000 })
  t.pass('the overview shows 7 ready jobs on main without a reload')
  if (process.env.DISPENSERD_SCREENSHOTS === 'docs') {
    // For the picture in README only: some traffic, so the charts have lines to show.
    for (let i = 0; i < 6; i++) {
      await api('/schedule', { jobs: Array.from({ length: 20 + i * 15 }, (_, j) => ({ lane: 'video', message: `clip ${i}-${j}.mp4` })) })
      for (let j = 0; j < 10 + i * 8; j++) await api('/receive_noblock', { lane: 'video' })
      await new Promise((resolve) => setTimeout(resolve, 700))
    }
  }
  await page.screenshot({ path: path.join(shots, 'dashboard-overview.png') })
})

t.test('a pause done through the UI takes effect on the daemon, and so does the resume', async (t) => {
  await page.click('tr[data-lane="main"] button.pause')
  await until(async () => (await metric('dispenserd_lane_paused', { lane: 'main' })) === 1, 'main to be paused')
  t.match(await api('/receive_noblock'), { code: 2 }, 'main serves nothing while paused')
  await page.waitForSelector('tr[data-lane="main"] .tag.paused')
  await page.click('tr[data-lane="main"] button.resume')
  await until(async () => (await metric('dispenserd_lane_paused', { lane: 'main' })) === 0, 'main to be resumed')
  t.match(await api('/receive_noblock'), { message: 'resize 1.png' }, 'and serves again')
})

t.test('a bulk retry done through the UI takes effect: the dead jobs run again', async (t) => {
  const flag = path.join(tempDir(), 'ready')
  await api('/schedule', { jobs: [1, 2, 3].map(() => ({ lane: 'work', message: JSON.stringify({ arguments: { FLAG: flag } }) })) })
  await until(async () => (await metric('dispenserd_jobs', { lane: 'work', state: 'dead' })) === 3, 'three dead jobs')
  await page.goto(`${d.url}/ui/#/lane/work`)
  await page.selectOption('select.state', 'dead')
  await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelectorAll('table.jobs tbody tr').length === 3)
  await page.screenshot({ path: path.join(shots, 'dashboard-lane.png') })
  await page.check('input.select-all')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(flag, '') // from now on the jobs succeed
  await page.click('.bulk button.retry')
  await page.waitForSelector('.notice')
  t.match(await page.textContent('.notice'), 'retry: 3 of 3 done')
  await until(async () => (await metric('jobs_total', { namespace: 'work', action: 'die', status: '0' })) === 3, 'the retried jobs to run and succeed')
  t.equal(await metric('dispenserd_jobs_retried_total', { lane: 'work' }), 3)
})

t.test('failed, running, job and daemon pages load; a message is shown as text, never as markup', async (t) => {
  const evil = '<img src=x onerror="window.__owned=1"><b>bold</b>'
  const { hash } = await api('/schedule', { lane: 'work', message: JSON.stringify({ arguments: { FLAG: '/nonexistent' } }) })
  await until(async () => (await api(`/job?hash=${String(hash)}`)).state === 'dead', 'a dead job to show')
  await page.goto(`${d.url}/ui/#/failed`)
  await page.waitForSelector('.group[data-lane="work"] table.jobs')
  await page.screenshot({ path: path.join(shots, 'dashboard-failed.png') })
  await page.goto(`${d.url}/ui/#/running`)
  await page.waitForSelector('h2')
  await page.screenshot({ path: path.join(shots, 'dashboard-running.png') })
  const { hash: evilHash } = await api('/schedule', { message: evil })
  await page.goto(`${d.url}/ui/#/job/${String(evilHash)}`)
  await page.waitForSelector('pre.message')
  t.equal(await page.textContent('pre.message'), evil, 'the message, character for character')
  t.equal(await page.locator('pre.message img').count(), 0, 'no element made from it')
  t.equal(await page.evaluate(() => typeof (globalThis as unknown as InPage).__owned), 'undefined', 'no script of it ran')
  await page.screenshot({ path: path.join(shots, 'dashboard-job.png') })
  await page.goto(`${d.url}/ui/#/daemon`)
  await page.waitForSelector('.block[data-block="tasks"]')
  await page.screenshot({ path: path.join(shots, 'dashboard-daemon.png') })
  t.same(consoleErrors, [], 'no console errors on any page')
})

t.test('the live socket sends nothing without the token', async (t) => {
  const closed = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new (globalThis as unknown as InPage).WebSocket(url)
        let messages = 0
        ws.onopen = () => ws.send(JSON.stringify({ token: 'wrong' }))
        ws.onmessage = () => messages++
        ws.onclose = (e) => resolve({ code: e.code, messages })
      }),
    `${d.url.replace('http', 'ws')}/ui/live`,
  )
  t.same(closed, { code: 4001, messages: 0 })
})
