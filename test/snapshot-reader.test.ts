import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { SnapshotStore } from '../src/persist/store'
import { decodeJob, readSnapshotFile } from '../src/persist/snapshot'
import { HashScheme, hashSchemes, processHashes } from '../src/queue/hash'
import { Queue, type RestoredJob, restoredHashOf } from '../src/queue/queue'
import { collect, snapshotFiles } from './helpers/snapshot-files'

/**
 * The snapshot reader reads most job lines from their bytes (job-line.ts) and the rest with
 * JSON.parse. Whatever a file holds, it must restore what JSON.parse of the whole file and
 * decodeJob restore (the reading every layout had before the fast path, and the original daemon's
 * indented files still get), and refuse what they refuse.
 */

const { dir, file } = snapshotFiles(t)

/** A scheme of an earlier process named in state.json, and one no state.json names. */
const earlier = new HashScheme()
hashSchemes.adopt(earlier.key)
const unknown = new HashScheme()

/** A small deterministic generator (xorshift), so a failure names a file that can be made again. */
function random(seed: number): (n: number) => number {
  let x = seed
  return (n) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

const hex = (pick: (n: number) => number, digits: number): string => Array.from({ length: digits }, () => '0123456789abcdef'[pick(16)]).join('')

/** The hash member's value as JSON text, of every kind a file may hold (undefined: no hash member). */
function hashText(pick: (n: number) => number, jobNum: number): string | undefined {
  const kinds = [
    () => JSON.stringify(processHashes.hashOf(jobNum)),
    () => JSON.stringify(earlier.hashOf(jobNum)),
    () => JSON.stringify(earlier.hashOf(jobNum + 1)), // another number's: kept as a string
    () => JSON.stringify(unknown.hashOf(jobNum)), // a scheme no state.json names
    () => JSON.stringify(hex(pick, 40)), // the original daemon's
    () => JSON.stringify(processHashes.hashOf(jobNum).toUpperCase()),
    () => JSON.stringify(processHashes.hashOf(jobNum).slice(0, 39)),
    () => JSON.stringify(`${processHashes.hashOf(jobNum)}0`),
    () => '""',
    () => '"ab\\u0063d"', // an escape: "abcd"
    () => '"h\\"q"',
    () => JSON.stringify('hash ünï'),
    () => undefined,
  ]
  return kinds[pick(kinds.length)]!()
}

const TIMES = ['"2026-11-30T21:12:59Z"', '"2026-11-30T21:13:00Z"', '"2026-11-30T23:13:00+02:00"', '"2026-11-30T21:13:01.250Z"', '"1999-01-01T00:00:00Z"']
const LANE_FIELDS = ['"main"', '"video"', '"ünï ✓"', '""', '"a\\"b"', '"caf\\u00e9"', '"main"']
const PRIORITIES = [0, 1, 512, 512, 4294967295, 99]
const MESSAGES = ['plain', '', 'quote " and backslash \\ inside', 'line\nbreak\ttab', 'ünïcödé ✓ 🚀', '\u0000\u001f control', 'x'.repeat(5000), '"}', 'ends with a backslash \\', '\u2028\u2029', '{"json":"inside"}']

/** One job line: mostly as dispenserd writes it, some with members the fast reader leaves to JSON. */
function jobLine(pick: (n: number) => number, jobNum: number, time: string, laneField: string, priority: number): string {
  const hash = hashText(pick, jobNum)
  const message = JSON.stringify(MESSAGES[pick(MESSAGES.length)]! + (pick(2) === 0 ? String(jobNum) : ''))
  const members = [`"job_num":${jobNum}`, ...(hash === undefined ? [] : [`"hash":${hash}`]), `"timestamp":${time}`, `"lane":${laneField}`, `"priority":${priority}`, `"message":${message}`]
  switch (pick(12)) {
    case 0:
      members.push('"attempts":2')
      break
    case 1:
      members.push('"not_before":"2030-01-01T00:00:00Z"')
      break
    case 2:
      members.push('"unique_key":"k"', '"unique_for":60')
      break
    case 3:
      members.push('"group":"tenant-7"')
      break
    case 4:
      members.reverse()
      break
    case 5:
      return `{${members.join(', ')}}`
  }
  return `{${members.join(',')}}`
}

/** A file of several lanes as dispenserd lays it out (one job per line), jobs in runs sharing a time and lane. */
function snapshotFile(seed: number): string {
  const pick = random(seed)
  const laneKeys = ['main', 'video', 'odd": [ lane \\ with "quotes" é', '', 'empty']
  let jobNum = 0
  const lanes = laneKeys.map((key) => {
    const count = key === 'empty' ? 0 : 200 + pick(300)
    const lines: string[] = []
    let time = TIMES[0]!
    let laneField = JSON.stringify(key)
    let priority = 512
    for (let i = 0; i < count; i++) {
      if (pick(8) === 0) time = TIMES[pick(TIMES.length)]!
      if (pick(10) === 0) laneField = LANE_FIELDS[pick(LANE_FIELDS.length)]!
      if (pick(6) === 0) priority = PRIORITIES[pick(PRIORITIES.length)]!
      jobNum += 1 + pick(3)
      lines.push(jobLine(pick, jobNum, time, laneField, priority))
    }
    return count === 0 ? `${JSON.stringify(key)}: []` : `${JSON.stringify(key)}: [\n${lines.join(',\n')}\n]`
  })
  return `{\n${lanes.join(',\n')}\n}\n`
}

/** The reading the fast path must agree with: the whole file parsed, each job by decodeJob. */
function reference(text: string): { lanes: string[]; jobs: RestoredJob[] } {
  const parsed = JSON.parse(text) as Record<string, unknown[]>
  const lanes: string[] = []
  const jobs: RestoredJob[] = []
  for (const [key, list] of Object.entries(parsed)) {
    lanes.push(key || 'main')
    list.forEach((raw, i) => jobs.push(decodeJob(raw, key || 'main', `lane ${key}, job ${i}`)))
  }
  return { lanes, jobs }
}

/** A restored job as the queue keeps it: the scheme that derives its hash (the reader's or found by rebuild), else its hash string. */
function restored(job: RestoredJob): unknown[] {
  const hash = restoredHashOf(job)
  const scheme = job.scheme ?? (hash === undefined ? undefined : hashSchemes.deriving(hash, job.jobNum))
  return [job.jobNum, hash, scheme?.key, job.created, job.lane, job.priority, job.message, job.attempts, job.notBefore, job.unique, job.group]
}

t.test('varied files restore the same jobs as JSON.parse reads them: lanes, priorities, times, hashes of every scheme, escapes, extra members', (t) => {
  for (let seed = 1; seed <= 12; seed++) {
    const text = snapshotFile(seed * 2654435761)
    const sink = collect()
    const count = readSnapshotFile(file(text), sink)
    const expected = reference(text)
    t.equal(count, expected.jobs.length, `file ${seed}: every job`)
    t.same(sink.lanes, expected.lanes, `file ${seed}: lanes in order`)
    t.same(sink.jobs.map(restored), expected.jobs.map(restored), `file ${seed}: jobs`)
  }
  t.end()
})

t.test('text JSON holds raw (DEL, U+2028, U+2029, other UTF-8) loads as JSON.parse reads it, in lines that share their middle', (t) => {
  const line = (jobNum: number, time: string, lane: string, message: string): string =>
    `{"job_num":${jobNum},"hash":"h","timestamp":"${time}","lane":"${lane}","priority":1,"message":"${message}"}`
  const lines = [
    line(1, '2026-11-30T21:12:59Z', '\u007fmain', 'del \u007f'),
    line(2, '2026-11-30T21:12:59Z', '\u007fmain', '\u2028\u2029'),
    line(3, '2026-11-30T21:12:59Z', 'ünï \u2028', 'ünïcödé ✓ 🚀'),
    line(4, '2026-11-30T21:12:59Z', 'ünï \u2028', '\\"\\\\'), // the characters " and \, escaped
    line(5, 'ü 30 Nov 2026', 'ünï \u2028', '\\"'),
    line(6, 'ü 30 Nov 2026', 'main', '\\ud83d\\ude00 \\ud800'),
  ]
  const text = `{\n"main": [\n${lines.join(',\n')}\n]\n}\n`
  const sink = collect()
  readSnapshotFile(file(text), sink)
  t.same(sink.jobs.map(restored), reference(text).jobs.map(restored))
  t.equal(sink.jobs[3]?.message, '"\\')
  t.end()
})

t.test('a hash is kept as the scheme that derives it only where that scheme derives it from the job number', (t) => {
  const lines = [
    [1, processHashes.hashOf(1), true],
    [2, earlier.hashOf(2), true],
    [3, earlier.hashOf(4), false],
    [4, unknown.hashOf(4), false],
    [5, earlier.hashOf(5).replace(/^./, (c) => (c === 'a' ? 'b' : 'a')), false],
    [6, earlier.hashOf(6), true],
    [7, `${earlier.hashOf(7).slice(0, 38)}zz`, false],
  ] as const
  const text = `{\n"main": [\n${lines.map(([jobNum, hash]) => `{"job_num":${jobNum},"hash":"${hash}","timestamp":"2026-11-30T21:12:59Z","lane":"main","priority":5,"message":"m"}`).join(',\n')}\n]\n}\n`
  const sink = collect()
  readSnapshotFile(file(text), sink)
  t.same(
    sink.jobs.map((job) => [job.jobNum, restoredHashOf(job), job.scheme !== undefined]),
    lines.map(([jobNum, hash, derived]) => [jobNum, hash, derived]),
  )
  t.end()
})

t.test('a queue loaded from a varied file holds what one restored from the JSON.parse reading holds', (t) => {
  const data = path.join(dir, 'data')
  const text = snapshotFile(77)
  const logger = pino({ level: 'silent' })
  mkdirSync(data, { recursive: true })
  writeFileSync(path.join(data, 'queue.json'), text)
  const clock = (): number => 1_800_000_000_000
  const loaded = new Queue({ clock })
  t.equal(new SnapshotStore(data, logger).load(loaded), reference(text).jobs.length)
  // The same lanes declared and jobs restored in the same order, from the reading of the whole file.
  const expected = new Queue({ clock })
  for (const [key, list] of Object.entries(JSON.parse(text) as Record<string, unknown[]>)) {
    expected.declareLane(key || 'main')
    list.forEach((raw) => expected.restore(decodeJob(raw, key || 'main', key)))
  }
  const contents = (queue: Queue): unknown[] =>
    queue.snapshot().map(({ lane, parts }) => [lane, parts.flat().map((job) => [job.jobNum, job.hash, job.hasStoredHash, job.created, job.lane, job.priority, job.message, job.attempts, job.group])])
  t.same(contents(loaded), contents(expected))
  t.end()
})

t.test('damage in a line shaped as dispenserd writes it is refused as before, with its line number', (t) => {
  const good = (jobNum: number): string => `{"job_num":${jobNum},"hash":"${processHashes.hashOf(jobNum)}","timestamp":"2026-11-30T21:12:59Z","lane":"main","priority":512,"message":"${'x'.repeat(64)}"}`
  const damaged: [string, RegExp][] = [
    [good(3).slice(0, 80), /line 5: not valid JSON/], // cut short mid-line: the file ends here
    [good(3).replace('"job_num":3', '"job_num":0'), /line 5 \(lane "main", job 2\): "job_num" must be a positive integer/],
    [good(3).replace('"priority":512', '"priority":4294967296'), /line 5 \(lane "main", job 2\): "priority" must be an integer from 0 to 4294967295/],
    [good(3).replace('"priority":512', '"priority":-1'), /line 5 \(lane "main", job 2\): "priority" must be an integer/],
    [good(3).replace('2026-11-30T21:12:59Z', '2026-13-45T99:99:99Z'), /line 5 \(lane "main", job 2\): "timestamp" must be an RFC 3339 time/],
    [good(3).replace('"message":"x', '"message":"a"b'), /line 5: not valid JSON/],
    [good(3).replace('"message":"x', '"message":"bad \\q escape'), /line 5: not valid JSON/],
    [good(3).replace('"lane":"main"', '"lane":"ma\\qin"'), /line 5: not valid JSON/],
    [good(3).replace('"hash":"', '"hash":"a"b'), /line 5: not valid JSON/],
    [good(3).replace('"message":"', '"message":'), /line 5: not valid JSON/],
    [good(3).replace(/}$/, ''), /line 5: not valid JSON/],
    [good(3).replace(/x+"}$/, '}'), /line 5: not valid JSON/], // `"message":"}`: cut short after the opening quote
    // Leading zeros: JSON has none (the fast reader took 007 as 7).
    [good(3).replace('"job_num":3', '"job_num":03'), /line 5: not valid JSON/],
    [good(3).replace('"priority":512', '"priority":0512'), /line 5: not valid JSON/],
    // A backslash before the timestamp's closing quote: JSON reads on past it; Date.parse took the text before it.
    [good(3).replace('"timestamp":"2026-11-30T21:12:59Z"', '"timestamp":"Nov 30 2026 (\\"'), /line 5: not valid JSON/],
    // Raw control characters inside a string: JSON has them only escaped (the fast reader took them as they were).
    [good(3).replace('"message":"x', '"message":"a\tb'), /line 5: not valid JSON/],
    [good(3).replace('"message":"x', '"message":"\u0001'), /line 5: not valid JSON/],
    [good(3).replace(/x"}$/, '\u001f"}'), /line 5: not valid JSON/],
    [good(3).replace('"lane":"main"', '"lane":"ma\u0000in"'), /line 5: not valid JSON/],
    [good(3).replace('"lane":"main"', '"lane":"\u007fmain\t"'), /line 5: not valid JSON/],
    [good(3).replace('"hash":"', '"hash":"a\u0002'), /line 5: not valid JSON/],
    [good(3).replace('"timestamp":"2026-11-30T21:12:59Z"', '"timestamp":"Nov 30\t2026"'), /line 5: not valid JSON/],
    // A timestamp with other than ASCII in it is UTF-8 text: "à" (bytes C3 A0) is no part of a date,
    // where the same bytes read as latin1 ("Ã" and a no-break space) are a word and a space Date.parse skips.
    [good(3).replace('"timestamp":"2026-11-30T21:12:59Z"', '"timestamp":"à30 Nov 2026 21:12:59"'), /line 5 \(lane "main", job 2\): "timestamp" must be an RFC 3339 time/],
  ]
  for (const [line, message] of damaged) {
    const cutShort = !line.endsWith('}')
    const text = `{\n"main": [\n${good(1)},\n${good(2)},\n${line}${cutShort ? '' : `,\n${good(4)}\n]\n}\n`}`
    t.throws(() => readSnapshotFile(file(text), collect()), message, line.slice(60, 140))
  }
  const ends = `{\n"main": [\n${good(1)},\n${good(2)}\n]\n`
  t.throws(() => readSnapshotFile(file(ends), collect()), /the file ends before its closing }/)
  t.end()
})

t.test('the file is closed once read, whether it ends well or is refused', (t) => {
  const openFiles = (): number => readdirSync('/proc/self/fd').length
  const before = openFiles()
  const line = `{"job_num":1,"hash":"${processHashes.hashOf(1)}","timestamp":"2026-11-30T21:12:59Z","lane":"main","priority":512,"message":"m"}`
  for (let i = 0; i < 5; i++) readSnapshotFile(file(`{\n"main": [\n${line}\n]\n}\n`), collect())
  for (let i = 0; i < 5; i++) t.throws(() => readSnapshotFile(file(`{\n"main": [\n${line.slice(0, 50)}\n]\n}\n`), collect()), /line 3: not valid JSON/)
  t.equal(openFiles(), before, 'no file left open')
  t.end()
})
