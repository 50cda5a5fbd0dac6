import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { cli } from './helpers/cli'
import { type Running, removeDir, runToExit, startDaemon, tempDir } from './helpers/daemon'

/** HTTPS (tls_cert, tls_key) with a certificate made here by openssl, for 127.0.0.1. */

const run = promisify(execFile)
const dir = tempDir('dispenserd-tls-')
const cert = path.join(dir, 'cert.pem')
const key = path.join(dir, 'key.pem')
const otherKey = path.join(dir, 'other-key.pem')
let d: Running
let url: string

t.before(async () => {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
  await run('openssl', ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', otherKey])
  d = await startDaemon({ args: ['--tls-cert', cert, '--tls-key', key], env: { DISPENSERD_AUTH_TOKEN: 'sesame' } })
  url = `https://127.0.0.1:${d.port}`
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
  removeDir(dir)
})

t.test('the daemon serves HTTPS, and says so', async (t) => {
  t.match(d.logs.find((l) => l.msg === 'listening'), { https: true })
  const status = await run('curl', ['-sS', '--cacert', cert, `${url}/`])
  t.match(JSON.parse(status.stdout), { status: 'ok', name: 'dispenserd' })
  const plain = await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${d.port}/`]).catch((err: { code: number }) => err)
  t.not((plain as { code?: number }).code ?? 0, 0, 'plain HTTP gets no answer')
})

t.test('the command-line client speaks HTTPS, trusting the certificate given with --ca or DISPENSERD_CA', async (t) => {
  const env = { DISPENSERD_TOKEN: 'sesame' }
  t.equal((await cli(url, ['schedule', 'over tls', '--ca', cert], { env })).code, 0)
  const received = await cli(url, ['receive'], { env: { ...env, DISPENSERD_CA: cert } })
  t.same([received.code, received.stdout], [0, 'over tls\n'], received.stderr)
  const untrusted = await cli(url, ['status'], { env })
  t.equal(untrusted.code, 3, 'a certificate nobody vouches for is refused')
  t.match(untrusted.stderr, /cannot reach dispenserd at https:\/\/127\.0\.0\.1:\d+: .*SELF_SIGNED/)
})

t.test('TLS settings that cannot work stop the start, naming the setting and the fix', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--tls-cert', cert], /tls_cert is set without tls_key: HTTPS needs both the certificate and its key/],
    [['--tls-cert', cert, '--tls-key', path.join(dir, 'missing.pem')], /tls_key: cannot read \S+missing\.pem \(ENOENT\); give a readable PEM file/],
    [['--tls-cert', cert, '--tls-key', otherKey], /tls_cert \S+ and tls_key \S+ cannot serve HTTPS \(.*\): give a PEM certificate and its own private key/],
    [['--tls-cert', key, '--tls-key', key], /cannot serve HTTPS/],
  ]
  for (const [args, wanted] of cases) {
    const data = tempDir()
    const r = await runToExit(['--address', '127.0.0.1:0', '--data-dir', data, ...args])
    removeDir(data)
    t.equal(r.code, 1, args.join(' '))
    t.match(r.stderr, wanted)
    t.notMatch(r.stdout, /"listening"/)
  }
  const config = path.join(dir, 'tls.json')
  writeFileSync(config, JSON.stringify({ tls_cert: cert, tls_key: otherKey }))
  const check = await cli(undefined, ['config', 'check', config])
  t.equal(check.code, 1)
  t.match(check.stderr, /cannot serve HTTPS/)
})
