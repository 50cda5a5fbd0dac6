import * as uWS from 'uWebSockets.js'

/** What the bare uWS servers (bench/ceiling.ts, bench/bound.ts) share. */

/**
 * The route handler of the bare uWS servers (bench/ceiling.ts, bench/bound.ts): reads the whole
 * body the plain way, then answers 200 with `answer(body)`, or 400 with the message it throws.
 */
export function withBody(answer: (body: Buffer) => string | Uint8Array) {
  return (res: uWS.HttpResponse): void => {
    let aborted = false
    let chunks: Buffer[] = []
    res.onAborted(() => (aborted = true))
    res.onData((chunk, isLast) => {
      if (aborted) return
      if (!isLast) {
        chunks.push(Buffer.from(chunk.slice(0)))
        return
      }
      const body = chunks.length === 0 ? Buffer.from(chunk) : Buffer.concat([...chunks, Buffer.from(chunk)])
      chunks = []
      let status = '200 OK'
      let reply: string | Uint8Array
      try {
        reply = answer(body)
      } catch (err) {
        status = '400 Bad Request'
        reply = JSON.stringify({ status: 'error', code: 1, message: (err as Error).message })
      }
      res.cork(() => res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(reply))
    })
  }
}

/** Listens on 127.0.0.1:`port` (0: any) and prints `listening PORT`, which bench/lib/procs.ts waits for. */
export function listen(app: uWS.TemplatedApp, name: string, port: number): void {
  app.listen('127.0.0.1', port, (token) => {
    if (token === false) {
      process.stderr.write(`${name}: cannot listen on ${port}\n`)
      process.exit(1)
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(token as unknown as uWS.us_socket)}\n`)
  })
}
