import t from 'tap'
import { parseJobLine } from '../src/persist/job-line'
import { decodeJob } from '../src/persist/snapshot'
import { ByteWriter } from '../src/queue/bytes'
import { Job, writeJobMembers } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'
import { restoredHashOf } from '../src/queue/queue'

/** The fast reader of job lines agrees with JSON.parse + decodeJob on every line it accepts, and declines the rest. */

function lineOf(job: Job): Buffer {
  const out = new ByteWriter(1024)
  out.ascii('{')
  writeJobMembers(job, out)
  out.ascii('}')
  return Buffer.from(out.buf.subarray(0, out.pos))
}

/** Both readings; the fast one keeps a hash this process's scheme derives as the scheme (no string), shown here as its hash. */
function both(line: Buffer): { fast: unknown; general: unknown } {
  const fast = parseJobLine(line, 0, line.length, 'main')
  const hashed = fast === undefined ? undefined : (({ scheme: _scheme, ...rest }) => ({ ...rest, hash: restoredHashOf(fast) }))(fast)
  return { fast: hashed, general: decodeJob(JSON.parse(line.toString('utf8')), 'main', 'test') }
}

t.test('lines as dispenserd writes them read the same both ways, escapes and non-ASCII included', (t) => {
  const messages = ['plain', '', 'quote " and backslash \\ inside', 'line\nbreak\ttab', 'ünïcödé ✓ 🚀', '\u0000\u001f control', 'x'.repeat(5000), '{"json":"inside"}']
  const lanes = ['main', 'video', 'ünï', '']
  let n = 0
  for (const message of messages) {
    for (const lane of lanes) {
      const job = new Job(++n * 7919, stampOf(lane || 'main', n * 104729 % 4294967296, 1_700_000_000 + n), message)
      const { fast, general } = both(lineOf(job))
      t.same(fast, general, `job ${n}: ${JSON.stringify(message).slice(0, 30)} in ${JSON.stringify(lane)}`)
    }
  }
  t.end()
})

t.test('a job is written as JSON.stringify writes it, lanes and times changing from job to job or not', (t) => {
  // The bytes before the priority are kept for a run of jobs sharing time and lane: each change must show.
  const lanes = ['main', 'a"b\\c', 'ünï ✓', '\u2028', 'main', 'main', 'video']
  const times = [1_700_000_000, 1_700_000_000, 1_700_000_001, 1_700_000_001, 1_600_000_000, 1_700_000_000, 1_700_000_000]
  lanes.forEach((lane, i) => {
    const job = new Job(i + 1, stampOf(lane, i * 1000, times[i]!), `message ${i}`, `hash${i}`)
    const expected = JSON.stringify({ job_num: i + 1, hash: `hash${i}`, timestamp: new Date(times[i]! * 1000).toISOString().slice(0, 19) + 'Z', lane, priority: i * 1000, message: `message ${i}` })
    t.equal(lineOf(job).toString('utf8'), expected, `job ${i + 1} (lane ${i})`)
  })
  t.end()
})

t.test('anything else is declined, to be read the general way', (t) => {
  const declined = [
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m","attempts":2}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","message":"m","priority":1}',
    '{"job_num":0,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m"}',
    '{"job_num":1,"hash":"h","timestamp":"yesterday","lane":"main","priority":1,"message":"m"}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":4294967296,"message":"m"}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"ma\\"in","priority":1,"message":"m"}',
    '{"job_num":1,"hash":"h","timestamp":"Nov 22 2026 (\\","lane":"main","priority":1,"message":"m"}',
    '{"job_num":007,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m"}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":01,"message":"m"}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"a"b"}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"bad \\q escape"}',
    '{"job_num":1,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"}',
    '{"job_num":1,"hash":"a\\u0062","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m"}',
    '{"job_num":1,"hash":"ünï","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m"}',
    '{"job_num": 1, "hash": "h"}',
    '[1,2,3]',
  ]
  for (const text of declined) t.equal(parseJobLine(Buffer.from(text), 0, Buffer.byteLength(text), 'main'), undefined, text.slice(0, 80))
  t.end()
})

t.test('a line is read within its bounds: what follows in the block is not looked at', (t) => {
  const line = '{"job_num":5,"hash":"h","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m"}'
  const block = Buffer.from(`xx${line},\n{"junk\\"}` + '"'.repeat(10))
  t.match(parseJobLine(block, 2, 2 + line.length, 'main'), { jobNum: 5, message: 'm', lane: 'main', priority: 1 })
  t.end()
})
