import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { SETTINGS, envName } from '../src/config'
import { CODES } from '../src/errors'

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')

t.test('README lists exactly the reply codes of the catalogue', (t) => {
  const rows = [...readme.matchAll(/^\| (\d+) \| (\d{3}) \| (.+) \|$/gm)].map((m) => [Number(m[1]), Number(m[2]), m[3]])
  const catalogue = Object.values(CODES).map((c) => [c.code, c.http, c.meaning])
  t.same(rows, catalogue)
  t.end()
})

t.test('README documents every setting with its flag and environment variable', (t) => {
  for (const setting of SETTINGS) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${setting.key}\` |`))
    t.ok(row, `a row for ${setting.key}`)
    t.match(row, `--${setting.flag}`)
    t.match(row, envName(setting))
  }
  t.end()
})

t.test('the shipped config/config.json holds the defaults', (t) => {
  const shipped = JSON.parse(readFileSync(path.join(__dirname, '..', 'config', 'config.json'), 'utf8')) as Record<string, unknown>
  t.match(shipped, { address: '0.0.0.0:8282', persist_queue: true, persist_interval: 3600, throttle_receive: false, throttle_schedule: false })
  t.end()
})
