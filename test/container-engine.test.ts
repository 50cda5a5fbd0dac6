import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { type Server, connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import t, { type Test } from 'tap'
import { containerDaemon } from './helpers/container-lanes'
import { removeDir, tempDir, until } from './helpers/daemon'
import { engineSkip, testEngine } from './helpers/engine'

/**
 * The engine over TCP: http://host:port, and https:// with a client certificate (how a remote
 * Docker is reached). The real engine answers on its unix socket; a TCP (or TLS) listener here
 * passes each connection through to it, so what is tested is the runner's own client.
 */

const skip = engineSkip

async function listening(t: Test, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

/** Copies bytes both ways between a client's socket and a new connection to the engine's unix socket. */
function passThrough(client: NodeJS.ReadWriteStream & { destroy(): void; on(event: 'error', fn: () => void): unknown }): void {
  const engine = connect(testEngine!.socketPath)
  client.pipe(engine).pipe(client)
  client.on('error', () => engine.destroy())
  engine.on('error', () => client.destroy())
}

/** A CA, a server certificate for localhost signed by it, and a client certificate signed by it. */
function certificates(dir: string, name: string): Record<'ca' | 'serverKey' | 'serverCert' | 'clientKey' | 'clientCert', string> {
  const file = (f: string): string => path.join(dir, `${name}-${f}`)
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' })
  }
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name} test CA`, '-keyout', file('ca-key.pem'), '-out', file('ca.pem'))
  for (const [who, cn, ext] of [
    ['server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'dispenserd', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', file(`${who}-key.pem`), '-out', file(`${who}.csr`))
    writeFileSync(file(`${who}.ext`), `${ext}\n`)
    ssl('x509', '-req', '-in', file(`${who}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', file(`${who}.ext`), '-out', file(`${who}.pem`))
  }
  return { ca: file('ca.pem'), serverKey: file('server-key.pem'), serverCert: file('server.pem'), clientKey: file('client-key.pem'), clientCert: file('client.pem') }
}

t.test('http://host:port reaches the engine over TCP', { skip }, async (t) => {
  const port = await listening(t, createServer((socket) => passThrough(socket)))
  const c = await containerDaemon(t, { tcp: { engine: `http://127.0.0.1:${port}`, command: ['echo', 'over tcp'] } })
  t.match(await c.settled(await c.schedule('tcp')), { state: 'succeeded', last_run: { output: 'over tcp\n' } })
})

t.test('https:// presents the client certificate and checks the engine’s against engine_ca', { skip }, async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const good = certificates(dir, 'good')
  const other = certificates(dir, 'other')
  let clientsSeen = 0
  const server = createTlsServer(
    { key: readFileSync(good.serverKey), cert: readFileSync(good.serverCert), ca: readFileSync(good.ca), requestCert: true, rejectUnauthorized: true },
    (socket) => {
      clientsSeen++
      passThrough(socket)
    },
  )
  const port = await listening(t, server)
  const engine = `https://localhost:${port}`
  const c = await containerDaemon(t, {
    tls: { engine, engine_ca: good.ca, engine_cert: good.clientCert, engine_key: good.clientKey, command: ['echo', 'over tls'] },
    // The engine's certificate is not signed by this CA: the engine counts as unreachable, with the reason shown.
    distrusted: { engine, engine_ca: other.ca, engine_cert: good.clientCert, engine_key: good.clientKey, command: ['true'], upkeep_interval: 0.2 },
    // The engine refuses a client certificate of another CA.
    refused: { engine, engine_ca: good.ca, engine_cert: other.clientCert, engine_key: other.clientKey, command: ['true'], upkeep_interval: 0.2 },
  })
  t.match(await c.settled(await c.schedule('tls')), { state: 'succeeded', last_run: { output: 'over tls\n' } })
  t.ok(clientsSeen > 0, 'through the TLS listener')
  const [distrusted, refused] = [await c.schedule('distrusted'), await c.schedule('refused')]
  await until(async () => {
    const lanes = await c.runners()
    return (lanes.distrusted!.engine as { reachable: boolean }).reachable === false && (lanes.refused!.engine as { reachable: boolean }).reachable === false
  }, 'both lanes to find the engine unreachable')
  const lanes = await c.runners()
  t.match(lanes.distrusted, { engine: { error: /certificate/i } })
  t.match(lanes.refused, { engine: { error: /ECONNRESET|certificate|alert|socket hang up/i } })
  t.match(await c.job(distrusted), { state: 'queued', attempts: 0 })
  t.match(await c.job(refused), { state: 'queued', attempts: 0 })
})
