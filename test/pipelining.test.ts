import { type Socket, connect } from 'node:net'
import t from 'tap'
import { type Running, call, daemonForTest as daemon, removeDir, startDaemon } from './helpers/daemon'
import { FsyncGate } from './helpers/fsync-gate'

/**
 * Requests pipelined on one connection get their replies in order, or the connection is closed
 * with nothing changed: never a change made whose reply was lost (a client's retry would make it
 * twice). uWS closes a connection on which a request arrives while an earlier reply is pending.
 */

const post = (path: string, body: unknown): string => {
  const text = JSON.stringify(body)
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
}
const LIST = 'GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n'

interface Reply {
  status: number
  body: Record<string, unknown>
}

/** A raw connection that parses the replies it receives, in order. */
class Connection {
  readonly replies: Reply[] = []
  closed = false
  private buffered: Buffer = Buffer.alloc(0)
  private waiters: (() => void)[] = []

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      this.parse()
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  static async open(port: number): Promise<Connection> {
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    return new Connection(socket)
  }

  write(requests: string): void {
    this.socket.write(requests)
  }

  /** Resolves once `count` replies have arrived or the connection has closed; fails after 10 s. */
  async settle(count: number): Promise<void> {
    const deadline = Date.now() + 10_000
    while (this.replies.length < count && !this.closed) {
      if (Date.now() > deadline) throw new Error(`waited 10 s for ${count} replies; got ${this.replies.length}`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }

  private parse(): void {
    for (;;) {
      const headEnd = this.buffered.indexOf('\r\n\r\n')
      if (headEnd < 0) return
      const head = this.buffered.subarray(0, headEnd).toString('latin1')
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)![1])
      const length = /\r\nContent-Length: (\d+)/i.exec(head)
      let body: Buffer
      let rest: Buffer
      if (length !== null) {
        const end = headEnd + 4 + Number(length[1])
        if (this.buffered.length < end) return
        body = this.buffered.subarray(headEnd + 4, end)
        rest = this.buffered.subarray(end)
      } else {
        // Chunked: only the terminating chunk tells where the body ends.
        const end = this.buffered.indexOf('\r\n0\r\n\r\n', headEnd)
        if (end < 0) return
        body = Buffer.from(this.buffered.subarray(headEnd + 4, end).toString('latin1').replace(/(^|\r\n)[0-9a-f]+\r\n/g, ''), 'latin1')
        rest = this.buffered.subarray(end + 7)
      }
      this.replies.push({ status, body: JSON.parse(body.toString()) as Record<string, unknown> })
      this.buffered = rest
    }
  }
}

async function queued(d: Running, lane: string): Promise<string[]> {
  return (((await call(`${d.url}/jobs`)).body[lane] ?? []) as { message: string }[]).map((job) => job.message)
}

t.test('schedule, receive_block of a ready job and GET /jobs in one write: three replies, in order', async (t) => {
  const d = await daemon(t)
  await call(`${d.url}/schedule`, { lane: 'ready', message: 'waiting already' })
  const c = await Connection.open(d.port)
  c.write(post('/schedule', { lane: 'p', message: 'pipelined' }) + post('/receive_block', { lane: 'ready' }) + LIST)
  await c.settle(3)
  t.equal(c.replies.length, 3, 'every request was answered')
  t.same(c.replies.map((r) => r.status), [200, 200, 200])
  t.match(c.replies[0]!.body, { status: 'ok', code: 0 }, 'first the schedule')
  t.match(c.replies[1]!.body, { code: 0, message: 'waiting already' }, 'then the receive, with the ready job')
  t.same((c.replies[2]!.body.p as { message: string }[]).map((j) => j.message), ['pipelined'], 'then the listing, which sees the job scheduled before it')
  t.same(c.replies[2]!.body.ready, [], 'and not the job received before it')
  t.equal(c.closed, false, 'the connection stays open')
  c.socket.destroy()
  t.same(await queued(d, 'p'), ['pipelined'], 'one job queued, for one reply that said ok')
})

t.test('with the journal, changes pipelined in one write are refused before anything is changed', async (t) => {
  const d = await daemon(t, ['--persistence', 'journal'])
  const c = await Connection.open(d.port)
  c.write(post('/schedule', { lane: 'j', message: 'first' }) + post('/schedule', { lane: 'j', message: 'second' }) + LIST)
  await c.settle(3)
  const oks = c.replies.filter((r) => r.body.status === 'ok' && r.body.job_num !== undefined).length
  t.same(await queued(d, 'j'), ['first', 'second'].slice(0, oks), `jobs queued match the ${oks} schedule replies that said ok`)
  t.ok(c.closed || c.replies.length === 3, 'every request was answered, or the connection closed')
  c.socket.destroy()
})

t.test('a request written while a throttled change waits for its reply is answered after it, in order', async (t) => {
  const d = await daemon(t, ['--throttle-schedule'])
  const c = await Connection.open(d.port)
  // The first takes the free slot and is answered at once; the second waits 25 ms for its slot,
  // with nothing behind it in this write, so uWS keeps the connection open.
  c.write(post('/schedule', { lane: 'w', message: 'one' }) + post('/schedule', { lane: 'w', message: 'two' }))
  await c.settle(1)
  // The first reply is out, so the read that carried both is over: this one arrives in a read of
  // its own, while the second still waits (or, on a slow machine, after it was answered).
  c.write(post('/schedule', { lane: 'w', message: 'three' }))
  await c.settle(3)
  t.same(c.replies.map((r) => r.status), [200, 200, 200], 'three replies')
  t.same(c.replies.map((r) => r.body.job_num), [1, 2, 3], 'in the order written')
  t.equal(c.closed, false)
  c.socket.destroy()
  t.same(await queued(d, 'w'), ['one', 'two', 'three'])
})

for (const fsync of ['always', 'interval', 'never']) {
  t.test(`with the journal (fsync ${fsync}), changes written back to back are answered in order or not made`, async (t) => {
    // With "interval" and "never" the replies go out before the daemon reads its sockets again, so
    // their connections' reading is not held; a reply still pending when one is read again would close it.
    const d = await daemon(t, ['--persistence', 'journal', '--journal-fsync', fsync])
    const messages = Array.from({ length: 10 }, (_, i) => `m${i}`)
    const c = await Connection.open(d.port)
    // Separate writes: each arrives in a read of its own or together with the next, as it happens.
    for (const message of messages) {
      c.write(post('/schedule', { lane: 'b', message }))
      await new Promise((resolve) => setImmediate(resolve))
    }
    await c.settle(messages.length)
    const oks = c.replies.filter((r) => r.status === 200).map((r) => r.body.job_num as number)
    t.same(oks, oks.map((_, i) => i + 1), `${oks.length} replies, in order`)
    t.same(await queued(d, 'b'), messages.slice(0, oks.length), 'the jobs queued are exactly those whose reply said ok')
    t.ok(c.closed || oks.length === messages.length, 'every request was answered, or the connection closed')
    c.socket.destroy()
  })
}

t.test('fsync always: a request written while a change waits for its fsync waits in the socket and is answered after it', async (t) => {
  const gate = new FsyncGate()
  const d = await startDaemon({ args: ['--persistence', 'journal', '--journal-fsync', 'always'], env: gate.env })
  t.teardown(async () => {
    gate.open()
    await d.stop()
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  const c = await Connection.open(d.port)
  gate.close()
  const synced = gate.started().length
  c.write(post('/schedule', { lane: 'g', message: 'one' }))
  await gate.waitStarted(synced + 1, 'the fsync of "one"')
  // Its reply waits for that fsync. The next request arrives in a read of its own; a status
  // request answered on another connection after it shows the daemon has polled its sockets since.
  c.write(post('/schedule', { lane: 'g', message: 'two' }))
  t.equal((await call(`${d.url}/`)).status, 200)
  t.equal(c.closed, false, 'the connection was not read while "one" waited, so it is still open')
  t.equal(c.replies.length, 0, '"one" is not answered before its fsync')
  gate.open()
  await c.settle(2)
  t.same(c.replies.map((r) => r.body.job_num), [1, 2], 'both answered, in the order written')
  t.equal(c.closed, false)
  c.socket.destroy()
  t.same(await queued(d, 'g'), ['one', 'two'])
})
