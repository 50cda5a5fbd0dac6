import t from 'tap'
import { ByteWriter, jsonStringBound } from '../src/queue/bytes'
import { Job, writeJobMembers } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'

/**
 * ByteWriter.jsonString writes what JSON.stringify writes, whatever the string holds and however
 * V8 represents it (flat, cons, sliced, internalized, one or two bytes a character): it copies the
 * text natively and checks the bytes written, so every kind of string goes through the same test.
 */

function written(texts: string[], pieceBytes = 16): string {
  const out = new ByteWriter(pieceBytes)
  for (const text of texts) {
    out.reserve(jsonStringBound(text) + 1)
    out.jsonString(text)
    out.byte(0x2c)
  }
  return out.buf.toString('utf8', 0, out.pos)
}

const expected = (texts: string[]): string => texts.map((text) => `${JSON.stringify(text)},`).join('')

t.test('strings are written as JSON.stringify writes them: escapes, non-ASCII, lone surrogates, lengths', (t) => {
  const texts = [
    '',
    'plain',
    '0'.repeat(64),
    'quote " backslash \\ slash /',
    'controls \u0000 \u0001 \u001f \n \r \t and DEL \u007f',
    'latin-1 é ü ÿ',
    'BMP ✓ \u2028 \u2029 and astral 🚀',
    'lone \ud800 high and \udfff low surrogates',
    '"',
    '\\',
    '\u0000',
    'ascii then é at the end é',
    'x'.repeat(5000),
    `${'y'.repeat(70_000)}"`,
  ]
  // Named by index: a raw U+2028 in an assertion's name would break the TAP stream.
  texts.forEach((text, i) => t.equal(written([text]), expected([text]), `text ${i}`))
  t.equal(written(texts), expected(texts), 'one after another in a growing buffer')
  t.end()
})

t.test('every string representation V8 makes gives the same bytes', (t) => {
  const parent = `${'a'.repeat(40)}"b\\c${'d'.repeat(40)}é`
  const twoByteAscii = `é${'ascii only'.repeat(3)}`.slice(1) // ASCII characters, likely held two bytes each
  const cons = 'left part of a cons string, '.concat(String(Math.random()), ' and its right part')
  const internalized = Object.keys({ ['an object key, internalized']: 1 })[0]!
  const parsed = (JSON.parse('{"m":"from JSON.parse with \\"escapes\\""}') as { m: string }).m
  const fromBuffer = Buffer.from('from a buffer, latin1 \u00e9', 'latin1').toString('latin1')
  const texts = [parent.slice(10, 60), parent.slice(2, 30), twoByteAscii, cons, internalized, parsed, fromBuffer, `${cons}${parent}`]
  texts.forEach((text, i) => t.equal(written([text]), expected([text]), `representation ${i}`))
  t.end()
})

t.test('bytes and byte write what they are given, short pieces and long ones', (t) => {
  const out = new ByteWriter(8)
  const pieces = [Buffer.from('"job_num":'), new Uint8Array([0x7b]), Buffer.alloc(0), Buffer.from('z'.repeat(300)), new TextEncoder().encode(',"message":')]
  let text = ''
  for (const piece of pieces) {
    out.reserve(piece.length + 1)
    out.bytes(piece)
    out.byte(0x7d)
    text += `${Buffer.from(piece).toString('latin1')}}`
  }
  t.equal(out.buf.toString('latin1', 0, out.pos), text)
  t.end()
})

t.test("a job's members fit the room writeJobMembers makes, whatever its stored hash, wherever the writer stands", (t) => {
  // A hash no scheme derives (a queue.json of another daemon) is kept as a string of any length.
  // Its room came out of the job's own: with a long hash and a message of escapes the rest ran
  // past the buffer, which cut the message short (GET /job, queue.json, the journal).
  const created = Date.parse('2026-11-22T04:11:00Z') / 1000
  const jobs = [
    new Job(1, stampOf('main', 1, created), '\u0001'.repeat(400), 'h'.repeat(400)),
    new Job(2, stampOf('main', 1, created), 'plain', 'h'.repeat(2000)),
    new Job(3, stampOf('lane "é"', 7, created), '\u2028 é "\\'.repeat(50), `${'\u0001'.repeat(300)}é`),
  ]
  jobs.forEach((job, j) => {
    const expected = `{"job_num":${job.jobNum},"hash":${JSON.stringify(job.hash)},"timestamp":"2026-11-22T04:11:00Z","lane":${JSON.stringify(job.lane)},"priority":${job.priority},"message":${JSON.stringify(job.message)}}`
    const wrong: number[] = []
    // Every room from none to more than the job needs: a writer just short of its reserve, just past it.
    for (let room = 0; room <= 8000; room++) {
      const out = new ByteWriter(8192)
      out.pos = out.buf.length - room
      const start = out.pos
      writeJobMembers(job, out)
      out.reserve(1)
      out.byte(0x7d)
      if (`{${out.buf.toString('utf8', start, out.pos)}` !== expected) wrong.push(room)
    }
    t.same(wrong.slice(0, 3), [], `job ${j}: written whole with any room left (wrong with ${wrong.length} rooms)`)
  })
  t.end()
})
