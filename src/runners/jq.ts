import { readFileSync } from 'node:fs'
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads'
import { singleExecutable } from '../sea'

/**
 * jq filters, run by jq itself: jq 1.7 compiled to WebAssembly (the jq-web package), not a
 * look-alike. It runs in a worker thread for three reasons: a filter that loops forever (say on a
 * number from a job) is stopped at its time limit by ending the thread instead of hanging the
 * daemon; the Emscripten runtime sets `process.exitCode` after a failing run, which must not leak
 * into the daemon's own exit code; and jq's `debug`/`stderr` output goes nowhere near the log.
 *
 * In the single executable jq-web's script and its .wasm ride along as assets (see ./build); jq-web
 * reads the .wasm with `fs.readFileSync` beside its script, so the worker evaluates the script with
 * an `fs` whose readFileSync hands over the embedded bytes for that one file.
 */

export const JQ_SCRIPT_ASSET = 'jq.js'
export const JQ_WASM_ASSET = 'jq.wasm'

/** A filter's run may take this long before its thread is ended and the run fails. */
export const FILTER_TIME_LIMIT_MS = 2000

/** How long loading jq may take (the first compile of 2.7 MB of WebAssembly). */
const LOAD_TIME_LIMIT_MS = 30_000

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const fs = require('node:fs')
for (const name of ['log', 'info', 'warn', 'error', 'debug']) console[name] = () => {}
const wasmFs = Object.assign({}, fs, {
  readFileSync: (file, ...rest) => (String(file).endsWith('/jq.wasm') ? workerData.wasm : fs.readFileSync(file, ...rest)),
})
const loaded = { exports: {} }
new Function('module', 'exports', 'require', '__dirname', '__filename', workerData.script)(
  loaded, loaded.exports, (name) => (name === 'fs' || name === 'node:fs' ? wasmFs : require(name)), '/jq-web', '/jq-web/jq.js')
function run(jq, input, program) {
  try {
    return { output: jq.raw(input, program, ['-c']) || '' }
  } catch (err) {
    return { error: String((err && (err.stderr || err.message)) || err), exitCode: err && err.exitCode }
  }
}
// A check at start: done[0] becomes 1 once jq has loaded, 2 once the program has run on null.
const check = workerData.check
function signal(state) {
  Atomics.store(check.done, 0, state)
  Atomics.notify(check.done, 0)
}
loaded.exports.then((jq) => {
  if (check !== undefined) {
    signal(1)
    check.port.postMessage(run(jq, 'null', check.program))
    signal(2)
  }
  parentPort.on('message', (request) => parentPort.postMessage(run(jq, request.input, request.program)))
  parentPort.postMessage({ ready: true })
}, (err) => {
  if (check !== undefined) {
    check.port.postMessage({ error: 'jq did not load: ' + String((err && err.message) || err) })
    signal(2)
  }
  throw err
})

`

interface Reply {
  output?: string
  error?: string
  exitCode?: number
}

/** `transient`: jq itself failed (it could not load, its thread died), not the program on this input. */
export type FilterResult = { ok: true; outputs: unknown[] } | { ok: false; message: string; transient?: boolean }

/** jq-web's script (evaluated in the worker) and its WebAssembly. */
export interface JqFiles {
  script: string
  wasm: Uint8Array
}

let jqFiles: JqFiles | undefined

/** jq-web's script and WebAssembly: the executable's assets, or the npm package. Read once. */
export function loadJq(): JqFiles {
  if (jqFiles !== undefined) return jqFiles
  const sea = singleExecutable()
  if (sea !== undefined) {
    jqFiles = { script: Buffer.from(sea.getAsset(JQ_SCRIPT_ASSET)).toString('utf8'), wasm: new Uint8Array(sea.getAsset(JQ_WASM_ASSET)) }
  } else {
    const script = require.resolve('jq-web/jq.js')
    jqFiles = { script: readFileSync(script, 'utf8'), wasm: readFileSync(script.replace(/jq\.js$/, 'jq.wasm')) }
  }
  return jqFiles
}

/** Ends a worker thread; `terminate` only reports its exit code, so there is nothing to wait for. */
function end(worker: Worker): void {
  worker.terminate().then(
    () => undefined,
    () => undefined,
  )
}

/** jq's message without the name of the scratch file it read the job from. */
function cleanMessage(text: string): string {
  return text.replace(/ \(at inputString:\d+\)/g, '').replace(/ \(at <unknown>\)/g, '').trim()
}

/** A worker thread with jq, and whether it has loaded jq (false: it could not, or not in time). */
interface Thread {
  worker: Worker
  ready: Promise<boolean>
}

/**
 * One jq program, run against one input at a time in its own worker thread. `create` compiles it
 * first, synchronously (daemon start is synchronous), and throws jq's compile error. The time
 * limit counts from when a loaded jq gets the input: a fresh thread's loading (slow on a busy
 * machine) is not the filter's time.
 */
export class JqFilter {
  private thread: Thread | undefined
  private readonly pending: { input: string; resolve: (result: FilterResult) => void }[] = []
  private busy = false

  private constructor(
    private readonly program: string,
    private readonly timeLimitMs: number,
    private readonly files: () => JqFiles,
  ) {}

  /** `files`: where jq comes from (tests hand in a slower one). */
  static create(program: string, timeLimitMs = FILTER_TIME_LIMIT_MS, files = loadJq): JqFilter {
    const filter = new JqFilter(program, timeLimitMs, files)
    filter.thread = filter.startChecked()
    return filter
  }

  /** Runs the program on `input` (as JSON); resolves to its outputs or jq's error message. */
  apply(input: unknown): Promise<FilterResult> {
    return new Promise((resolve) => {
      this.pending.push({ input: JSON.stringify(input), resolve })
      this.next()
    })
  }

  close(): Promise<number> | undefined {
    const thread = this.thread
    this.thread = undefined
    for (const { resolve } of this.pending.splice(0)) resolve({ ok: false, message: 'the daemon is stopping' })
    return thread?.worker.terminate()
  }

  private next(): void {
    if (this.busy) return
    const request = this.pending.shift()
    if (request === undefined) return
    this.busy = true
    const thread = (this.thread ??= this.start())
    const done = (result: FilterResult): void => {
      this.busy = false
      request.resolve(result)
      this.next()
    }
    thread.ready.then(
      (loaded) => {
        if (loaded) return this.send(thread, request.input, done)
        this.drop(thread)
        done({ ok: false, message: `jq did not load within ${LOAD_TIME_LIMIT_MS / 1000} s`, transient: true })
      },
      (err: unknown) => done({ ok: false, message: `jq did not load: ${String(err)}`, transient: true }),
    )
  }

  /** Forgets a thread (the next run starts a fresh one) and ends it. */
  private drop(thread: Thread): void {
    if (this.thread === thread) this.thread = undefined
    end(thread.worker)
  }

  private send(thread: Thread, input: string, done: (result: FilterResult) => void): void {
    const { worker } = thread
    let settled = false
    const settle = (result: FilterResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      worker.off('message', onReply)
      worker.off('error', onError)
      done(result)
    }
    const onReply = (reply: Reply): void => settle(this.result(reply))
    const onError = (err: Error): void => {
      this.drop(thread)
      settle({ ok: false, message: `jq stopped: ${err.message}`, transient: true })
    }
    const timer = setTimeout(() => {
      // The thread may be in a loop that never yields: end it; the next run starts a fresh one.
      this.drop(thread)
      settle({ ok: false, message: `the filter ran longer than ${this.timeLimitMs} ms and was stopped` })
    }, this.timeLimitMs)
    worker.on('message', onReply)
    worker.on('error', onError)
    worker.postMessage({ input, program: this.program })
  }

  private result(reply: Reply): FilterResult {
    if (reply.error !== undefined) return { ok: false, message: cleanMessage(reply.error) }
    const lines = (reply.output ?? '').split('\n').filter((line) => line !== '')
    return { ok: true, outputs: lines.map((line) => JSON.parse(line) as unknown) }
  }

  private start(check?: { port: MessagePort; program: string; done: Int32Array }): Thread {
    const { script, wasm } = this.files()
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { script, wasm, check },
      transferList: check === undefined ? [] : [check.port],
      // Nothing of jq's belongs in the daemon's output: both streams are read and dropped.
      stdout: true,
      stderr: true,
    })
    worker.stdout.resume()
    worker.stderr.resume()
    // An idle worker must not keep the daemon alive at exit.
    worker.unref()
    const ready = new Promise<boolean>((resolve) => {
      const finish = (loaded: boolean): void => {
        clearTimeout(timer)
        worker.off('message', onMessage)
        worker.off('error', onError)
        resolve(loaded)
      }
      const onMessage = (message: { ready?: boolean }): void => finish(message.ready === true)
      const onError = (): void => finish(false)
      const timer = setTimeout(() => finish(false), LOAD_TIME_LIMIT_MS)
      timer.unref()
      worker.on('message', onMessage)
      worker.on('error', onError)
    })
    return { worker, ready }
  }

  /**
   * Starts the worker and, blocking until it answers, runs the program once on `null`: jq compiles
   * a program before running it and reports syntax errors and unknown names with exit code 3 and
   * its own words ("jq: 1 compile error"). What the program does with null does not matter (an
   * error there is a runtime error), and a program still running at the time limit has compiled.
   */
  private startChecked(): Thread | undefined {
    const { port1, port2 } = new MessageChannel()
    const done = new Int32Array(new SharedArrayBuffer(4))
    const thread = this.start({ port: port2, program: this.program, done })
    const { worker } = thread
    const loading = Atomics.wait(done, 0, 0, LOAD_TIME_LIMIT_MS)
    const running = loading === 'timed-out' ? loading : Atomics.wait(done, 0, 1, this.timeLimitMs)
    const reply = receiveMessageOnPort(port1)?.message as Reply | undefined
    port1.close()
    if (loading === 'timed-out' || (reply?.error?.startsWith('jq did not load') ?? false)) {
      end(worker)
      throw new Error(reply?.error ?? `jq did not load within ${LOAD_TIME_LIMIT_MS / 1000} s`)
    }
    if (running === 'timed-out') {
      // Busy with null for good: end that thread; the first job starts a fresh one.
      end(worker)
      return undefined
    }
    if (reply?.exitCode === 3 && reply.error !== undefined && /compile errors?$/.test(reply.error)) {
      end(worker)
      throw new Error(`jq cannot compile it: ${cleanMessage(reply.error)}`)
    }
    return thread
  }
}
