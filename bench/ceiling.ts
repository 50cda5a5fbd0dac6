/**
 * The HTTP ceiling on this machine: a bare uWebSockets.js server that does the least any JSON queue
 * must do (read the body, parse the JSON, answer a fixed reply) and nothing else. Benchmarks quote
 * dispenserd as a ratio of this, measured in the same run.
 *
 *   node dist/bench/ceiling.js PORT
 */
import * as uWS from 'uWebSockets.js'

const SCHEDULED = '{"status":"ok","code":0,"job_num":1,"hash":"0000000000000000000000000000000000000000"}'
const RECEIVED =
  '{"status":"ok","code":0,"job_num":1,"hash":"0000000000000000000000000000000000000000","timestamp":"2026-01-01T00:00:00Z","lane":"main","priority":5,"message":"0123456789012345678901234567890123456789012345678901234567890123"}'

function withJsonBody(reply: string) {
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
      if (body.length > 0) JSON.parse(body.toString('utf8'))
      res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(reply))
    })
  }
}

const port = Number(process.argv[2] ?? 0)
uWS
  .App()
  .any('/schedule', withJsonBody(SCHEDULED))
  .any('/receive_noblock', withJsonBody(RECEIVED))
  .any('/*', (res) => {
    res.writeStatus('200 OK').end('{"status":"ok"}')
  })
  .listen('127.0.0.1', port, (token) => {
    if (token === false) {
      process.stderr.write(`ceiling: cannot listen on ${port}\n`)
      process.exit(1)
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(token as unknown as uWS.us_socket)}\n`)
  })
