/**
 * The HTTP ceiling on this machine: a bare uWebSockets.js server that does the least any JSON queue
 * must do (read the body, parse the JSON, answer a fixed reply) and nothing else. Benchmarks quote
 * dispenserd as a ratio of this, measured in the same run.
 *
 *   node dist/bench/ceiling.js PORT
 */
import * as uWS from 'uWebSockets.js'
import { listen, withBody } from './lib/bare'

const SCHEDULED = '{"status":"ok","code":0,"job_num":1,"hash":"0000000000000000000000000000000000000000"}'
const RECEIVED =
  '{"status":"ok","code":0,"job_num":1,"hash":"0000000000000000000000000000000000000000","timestamp":"2026-01-01T00:00:00Z","lane":"main","priority":5,"message":"0123456789012345678901234567890123456789012345678901234567890123"}'

/** The least a JSON endpoint does: parse the body (when there is one), answer a fixed reply. */
function parsed(reply: string) {
  return withBody((body) => {
    if (body.length > 0) JSON.parse(body.toString('utf8'))
    return reply
  })
}

const app = uWS
  .App()
  .any('/schedule', parsed(SCHEDULED))
  .any('/receive_noblock', parsed(RECEIVED))
  .any('/*', (res) => {
    res.writeStatus('200 OK').end('{"status":"ok"}')
  })

listen(app, 'ceiling', Number(process.argv[2] ?? 0))
