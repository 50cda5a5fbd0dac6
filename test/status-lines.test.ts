import { writeFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import path from 'node:path'
import t from 'tap'
import { CODES } from '../src/errors'
import { statusLine } from '../src/http/exchange'
import { type Running, rawExchange, removeDir, startDaemon, tempDir } from './helpers/daemon'

t.test('every status in the catalogue has a status line with its standard reason phrase', async (t) => {
  for (const [name, { http }] of Object.entries(CODES)) {
    t.equal(statusLine(http), `${http} ${STATUS_CODES[http]}`, name)
    t.notMatch(statusLine(http), /Unknown|undefined/, name)
  }
})

t.test('403 and 409 go out with their reason phrases', async (t) => {
  const dir = tempDir()
  let d: Running | undefined
  t.teardown(async () => {
    await d?.stop()
    removeDir(dir)
  })
  // A lane with a runner refuses receivers (409); Dispatch Jobs are off by default (403).
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { thumbs: { runner: 'exec', command: ['/bin/true'] } } }))
  d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', config] })
  const post = (path: string, body: string): string =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  const forbidden = await rawExchange(d.port, post('/v0/jobs/queue', JSON.stringify({ repo_url: 'https://example.com/r.git', ref: 'a'.repeat(40) })), 1000)
  t.match(forbidden, /^HTTP\/1\.1 403 Forbidden\r\n/)
  const conflict = await rawExchange(d.port, post('/receive_noblock', '{"lane":"thumbs"}'), 1000)
  t.match(conflict, /^HTTP\/1\.1 409 Conflict\r\n/)
})
