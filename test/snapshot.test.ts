import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { writeFileAtomically } from '../src/persist/atomic'
import { ByteWriter } from '../src/queue/bytes'
import { readLines } from '../src/persist/lines'
import { readSnapshotFile } from '../src/persist/snapshot'
import { encodeJobsByLane } from '../src/queue/listing'
import { Queue, restoredHashOf } from '../src/queue/queue'
import { collect, snapshotFiles } from './helpers/snapshot-files'

const { dir, file } = snapshotFiles(t)

t.test('what the encoder writes, the reader reads back: lanes, order, every field', async (t) => {
  const q = new Queue({ clock: () => 1_800_000_000_000 })
  const odd = 'odd": [ lane \\ with "quotes" \u00e9'
  for (let i = 0; i < 25; i++) q.schedule({ lane: i % 3 === 0 ? odd : 'main', priority: (i * 7) % 5, message: `m${i} "quoted"\n\\ ${'\u2603'}` })
  q.schedule({ lane: 'main', priority: 4294967295, message: '' })
  q.declareLane('empty')
  const target = path.join(dir, 'roundtrip.json')
  await writeFileAtomically(target, encodeJobsByLane(q.snapshot(), { pieceBytes: 4 }))
  const sink = collect()
  t.equal(readSnapshotFile(target, sink), 26)
  t.same(sink.lanes, ['main', odd, 'empty'])
  const expected = [...q.jobsInOrder('main'), ...q.jobsInOrder(odd)]
  t.same(
    sink.jobs.map((j) => [j.jobNum, restoredHashOf(j), j.created, j.lane, j.priority, j.message]),
    expected.map((j) => [j.jobNum, j.hash, j.created, j.lane, j.priority, j.message]),
  )
})

t.test('the original indented layout is parsed whole', (t) => {
  const sink = collect()
  const count = readSnapshotFile(
    file('{\n  "main": [\n    {\n      "job_num": 2,\n      "hash": "ab",\n      "timestamp": "2017-02-05T23:48:14-06:00",\n      "lane": "main",\n      "priority": 3,\n      "message": "x"\n    }\n  ],\n  "v": null\n}\n'),
    sink,
  )
  t.equal(count, 1)
  t.same(sink.lanes, ['main', 'v'])
  t.same(sink.jobs, [{ jobNum: 2, hash: 'ab', created: Date.parse('2017-02-06T05:48:14Z') / 1000, lane: 'main', priority: 3, message: 'x' }])
  t.end()
})

t.test('empty and whitespace-only files are an empty queue', (t) => {
  for (const content of ['', '\n\n  \n']) {
    const sink = collect()
    t.equal(readSnapshotFile(file(content), sink), 0)
    t.same(sink.lanes, ['main'])
  }
  t.end()
})

t.test('damage in a one-job-per-line file is reported with its line number', (t) => {
  const cases: [string, RegExp][] = [
    ['{\n"main": [\n{"job_num":1,"message":"a"},\n{"job_num":2,"message":\n]\n}\n', /line 4: not valid JSON/],
    ['{\n"main": [\n{"job_num":1,"message":"a"}\n]\n', /ends before its closing/],
    ['{\n"main": [\n{"job_num":0,"message":"a"}\n]\n}\n', /line 3 \(lane "main", job 0\): "job_num" must be a positive integer/],
    ['{\n"main": []\ngarbage\n}\n', /line 3: expected a lane/],
    ['{\n"main": [\n{"job_num":1,"message":"a","timestamp":"yesterday"}\n]\n}\n', /"timestamp" must be an RFC 3339 time/],
  ]
  for (const [content, message] of cases) t.throws(() => readSnapshotFile(file(content), collect()), message)
  t.end()
})

t.test('readLines handles lines across blocks, lines longer than a block, CRLF and no final newline', (t) => {
  const long = 'y'.repeat(100)
  const name = file(`a\r\nbb\n${long}\n\nlast`)
  t.same([...readLines(name, 8)], ['a', 'bb', long, '', 'last'])
  t.end()
})

t.test('a failed atomic write leaves the previous file and no temporary file', async (t) => {
  const target = path.join(dir, 'atomic.json')
  await writeFileAtomically(target, [Buffer.from('old')])
  function* failing(): Generator<Buffer> {
    yield Buffer.from('new part')
    throw new Error('encoder failed')
  }
  await t.rejects(writeFileAtomically(target, failing()), /encoder failed/)
  t.equal(readFileSync(target, "utf8"), 'old')
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [])
})

t.test('ByteWriter writes strings exactly as JSON.stringify does', (t) => {
  const samples = ['', 'plain', 'quote " and \\ backslash', 'tab\tnew\nline\u0001', 'caf\u00e9 \u2603 \u2028', '\ud83d\ude00 emoji', 'lone \ud800 surrogate', '\udfff', 'x'.repeat(5000)]
  for (const sample of samples) {
    const out = new ByteWriter(16)
    out.reserve(sample.length * 6 + 2)
    out.jsonString(sample)
    t.equal(out.take().toString("utf8"), JSON.stringify(sample), `sample ${samples.indexOf(sample)}`)
  }
  const out = new ByteWriter(16)
  out.reserve(64)
  out.uint(4294967295)
  out.ascii(' ')
  out.hex32(0xdeadbeef)
  out.hex32(7)
  t.equal(out.take().toString(), '4294967295 deadbeef00000007')
  t.end()
})
