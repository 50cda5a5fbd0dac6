/**
 * The journal's ceiling on this machine: the bare uWebSockets.js server of bench/ceiling.ts, which
 * also appends a record of each /schedule to a file the way any journal must (a checksummed line
 * per request, the lines of one event-loop turn in one write) and answers once it is written, and
 * in "always" mode once an fdatasync (at most two at a time, on the thread pool) that began after
 * the write has ended. No queue, no validation: what is left of the cost is the disk's and the
 * deferred reply's. The journal workload quotes it beside the daemon's journal modes.
 *
 *   node dist/bench/journal-ceiling.js PORT none|never|interval|always [DIR] [--prezero]
 *
 * `--prezero` writes into a file whose next megabytes were zero-filled and synced beforehand (as
 * PostgreSQL does its WAL segments), so that an fdatasync need not write the file's size.
 */
import { fdatasync, openSync, writeSync } from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import * as uWS from 'uWebSockets.js'

const [portArg, modeArg, dirArg] = process.argv.slice(2)
const port = Number(portArg ?? 0)
const mode = modeArg ?? 'always'
if (!['none', 'never', 'interval', 'always'].includes(mode)) throw new Error(`journal-ceiling: unknown mode ${mode}`)
const prezero = process.argv.includes('--prezero')
const dir = dirArg !== undefined && !dirArg.startsWith('--') ? dirArg : process.cwd()
const fd = openSync(path.join(dir, 'journal-ceiling.log'), prezero ? 'w+' : 'a')

const SCHEDULED = '{"status":"ok","code":0,"job_num":1,"hash":"0000000000000000000000000000000000000000"}'
const CHUNK = 8 * 1024 * 1024
let position = 0
let zeroedTo = 0
const zeros = Buffer.alloc(CHUNK)

/** Zero-fills and syncs the next chunk ahead of the writes (synchronously: this is a bound, not a design). */
function zeroAhead(): void {
  while (zeroedTo < position + CHUNK) {
    writeSync(fd, zeros, 0, CHUNK, zeroedTo)
    zeroedTo += CHUNK
  }
}
if (prezero) zeroAhead()

let batch = Buffer.alloc(1 << 20)
let used = 0
interface Pending {
  res: uWS.HttpResponse
  aborted: boolean
}
let waiting: Pending[] = []
let unsynced: Pending[] = []
let armed = false
let syncing = 0
let dirty = false
let jobNum = 0

function answer(list: Pending[]): void {
  for (const { res, aborted } of list) if (!aborted) res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(SCHEDULED))
}

function append(message: string): void {
  const json = `{"op":"schedule","job_num":${++jobNum},"hash":"0000000000000000000000000000000000000000","timestamp":"2026-11-30T21:00:00.000Z","lane":"main","priority":5,"message":${JSON.stringify(message)}}`
  const line = `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`
  if (used + line.length * 3 > batch.length) {
    const bigger = Buffer.alloc(batch.length * 2)
    batch.copy(bigger, 0, 0, used)
    batch = bigger
  }
  used += batch.write(line, used, 'utf8')
}

function flush(): void {
  armed = false
  if (used > 0) {
    if (prezero) {
      for (let off = 0; off < used; ) off += writeSync(fd, batch, off, used - off, position + off)
      position += used
      if (position + CHUNK / 2 > zeroedTo) zeroAhead()
    } else {
      for (let off = 0; off < used; ) off += writeSync(fd, batch, off, used - off)
    }
    used = 0
    dirty = true
  }
  const done = waiting
  waiting = []
  if (mode === 'always') {
    unsynced.push(...done)
    startSync()
  } else {
    answer(done)
  }
}

function startSync(): void {
  if (syncing >= 2 || (!dirty && unsynced.length === 0)) return
  const list = unsynced
  unsynced = []
  dirty = false
  syncing++
  fdatasync(fd, () => {
    syncing--
    answer(list)
    startSync()
  })
}

if (mode === 'interval') setInterval(startSync, 50)

uWS
  .App()
  .any('/schedule', (res) => {
    const pending: Pending = { res, aborted: false }
    res.onAborted(() => (pending.aborted = true))
    res.onData((chunk, isLast) => {
      if (pending.aborted || !isLast) return
      const body = Buffer.from(chunk)
      const parsed = JSON.parse(body.toString('utf8')) as { message: string }
      if (mode === 'none') {
        res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(SCHEDULED))
        return
      }
      append(parsed.message)
      waiting.push(pending)
      if (!armed) {
        armed = true
        setImmediate(flush)
      }
    })
  })
  .any('/*', (res) => {
    res.writeStatus('200 OK').end('{"status":"ok"}')
  })
  .listen('127.0.0.1', port, (token) => {
    if (token === false) {
      process.stderr.write(`journal-ceiling: cannot listen on ${port}\n`)
      process.exit(1)
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(token as unknown as uWS.us_socket)}\n`)
  })
