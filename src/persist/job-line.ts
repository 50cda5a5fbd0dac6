import { BACKSLASH, CLOSE_BRACE, QUOTE } from '../queue/bytes'
import { MAX_PRIORITY } from '../queue/job'
import { hashSchemes } from '../queue/hash'
import type { RestoredJob } from '../queue/queue'

/**
 * A job line exactly as dispenserd writes it (`{"job_num":N,"hash":"…","timestamp":"…","lane":"…",
 * "priority":N,"message":"…"}`, nothing more), read from its bytes without JSON.parse: at a million
 * lines, making a string of each, parsing it into an object and checking that was most of a
 * snapshot's load time (measured: 1.3–1.7 s against 0.9–1.0 s for a million 64-byte jobs).
 * Answers undefined for any other line (extra members, another order, escapes in a lane, a value
 * out of range): the caller then reads it the general way, which also words any error.
 */
const JOB_NUM = Buffer.from('{"job_num":')
const HASH = Buffer.from(',"hash":"')
const TIMESTAMP = Buffer.from('","timestamp":"')
const LANE = Buffer.from('","lane":"')
const PRIORITY = Buffer.from('","priority":')
const MESSAGE = Buffer.from(',"message":"')

/**
 * Text a JSON string holds as it is: no quote or control character (JSON has those only escaped)
 * and no backslash (an escape). Anchored and negated, V8 runs it faster than the unanchored search
 * for one of those characters (40 against 64 ms for a million 64-byte messages).
 */
const PLAIN = /^[^"\\\u0000-\u001f]*$/

/**
 * Buffer's own slice decoders, which `toString(encoding, start, end)` reaches through a lookup of
 * the encoding and argument checks: a fifth of the load time at a million lines. Node has had them
 * on Buffer.prototype for years; the typings leave them out.
 */
interface Slicing {
  latin1Slice(start: number, end: number): string
  utf8Slice(start: number, end: number): string
}

function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Slicing).latin1Slice(start, end)
}

function utf8(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Slicing).utf8Slice(start, end)
}

/** Position after `literal` if the bytes at `at` are it, else -1. */
function after(buf: Buffer, at: number, literal: Buffer): number {
  if (at < 0) return -1
  for (let i = 0; i < literal.length; i++) if (buf[at + i] !== literal[i]) return -1
  return at + literal.length
}

/** The first `byte` in `buf[from..to)`, or -1. (Buffer.indexOf would search on to the block's end.) */
function find(buf: Buffer, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === byte) return i
  return -1
}

/**
 * Whether `buf[from..to)` is printable ASCII without a backslash: text that reads the same as
 * bytes (latin1) and as JSON. A hash with an escape or other characters is read by JSON.
 */
function plainAscii(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = buf[i]!
    if (c < 0x20 || c > 0x7e || c === BACKSLASH) return false
  }
  return true
}

/** The next quote from `at` on the line (not escaped: the caller refuses backslashes where they matter), or -1. */
function quote(buf: Buffer, at: number, end: number): number {
  return find(buf, QUOTE, at, end)
}

/** Decimal digits at `at` (1 to 16 of them); sets `parsed` to the value and returns the position after, or -1. */
const parsed = { value: 0 }
function digits(buf: Buffer, at: number, end: number): number {
  if (at < 0) return -1
  let value = 0
  let i = at
  for (; i < end && i - at < 16; i++) {
    const c = buf[i]!
    if (c < 0x30 || c > 0x39) break
    value = value * 10 + (c - 0x30)
  }
  // None, or a leading zero JSON does not allow (007): the general reader refuses the line.
  if (i === at || (buf[at] === 0x30 && i - at > 1)) return -1
  parsed.value = value
  return i
}

/**
 * The bytes of the last text read in one place of a line, and what was made of them: consecutive
 * jobs mostly share a timestamp and a lane, so neither is made into a string again for each, and
 * their bytes are compared with the last ones before the line is searched for the closing quote.
 */
class LastText<T> {
  private readonly bytes = Buffer.alloc(256)
  private length = -1
  /** The closing quote of the text read last, or -1 when the line had none (or a `refused` byte before it). */
  end = -1

  constructor(
    private readonly make: (text: string) => T,
    public value: T,
    /** A byte the text may not hold (-1: none): such a line is left to the general reader. */
    private readonly refused = -1,
  ) {}

  /** What `make` makes of the text from `from` to the next quote before `lineEnd` (check `end`). */
  read(buf: Buffer, from: number, lineEnd: number, text: (buf: Buffer, from: number, to: number) => string): T {
    const length = this.length
    // The last text had no quote: the same bytes followed by one are the same text.
    if (length >= 0 && from + length < lineEnd && buf[from + length] === QUOTE) {
      let same = true
      for (let i = 0; same && i < length; i++) same = buf[from + i] === this.bytes[i]
      if (same) {
        this.end = from + length
        return this.value
      }
    }
    const end = quote(buf, from, lineEnd)
    this.end = end >= 0 && (this.refused < 0 || find(buf, this.refused, from, end) < 0) ? end : -1
    if (this.end < 0) return this.value
    this.value = this.make(text(buf, from, end))
    this.length = end - from <= this.bytes.length ? end - from : -1
    if (this.length >= 0) buf.copy(this.bytes, 0, from, end)
    return this.value
  }
}

/**
 * Seconds since the epoch of a timestamp (NaN when it is not one). One with a backslash is read by
 * JSON, the general way: `\"` does not end it there, where Date.parse would take the text before it.
 */
const lastTime = new LastText((text) => (PLAIN.test(text) ? Math.floor(Date.parse(text) / 1000) : NaN), NaN, BACKSLASH)
/** A lane's name; one with an escape is read by JSON, the general way. */
const lastLane = new LastText((text) => text, '', BACKSLASH)

/** A string literal with escapes, read by JSON (undefined when it is not one string). */
function escapedString(buf: Buffer, from: number, to: number): string | undefined {
  try {
    const value: unknown = JSON.parse(utf8(buf, from, to))
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

/** A DataView of the block a line is read from, made once a block (Buffer has no 32-bit reads at odd offsets). */
let viewed: Buffer | undefined
const NO_VIEW: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0))
let view = NO_VIEW
function viewOf(buf: Buffer): DataView<ArrayBufferLike> {
  if (buf !== viewed) {
    viewed = buf
    view = new DataView(buf.buffer, buf.byteOffset, buf.length)
  }
  return view
}

/** Lets go of the last block read (16 MiB a snapshot): call when a file has been read. */
export function releaseBlock(): void {
  viewed = undefined
  view = NO_VIEW
}

/**
 * The middle of the last line read, from its hash's closing quote to its message's opening one
 * (`","timestamp":"…","lane":"…","priority":N,"message":"`), and what it was read as. A snapshot
 * is written priority by priority, so runs of thousands of jobs share a time, lane and priority: a
 * line whose middle is the same bytes is read by one comparison, four bytes at a time, instead of
 * its three members being looked for and compared one by one.
 */
class LastMiddle {
  private readonly bytes = new Uint8Array(512)
  private readonly words = new DataView(this.bytes.buffer)
  private length = -1
  created = NaN
  lane = ''
  priority = 0

  /** Where the message starts when the line holds the last middle at `from` (before `to`), else -1. */
  match(buf: Buffer, from: number, to: number): number {
    const length = this.length
    if (length < 0 || from + length > to) return -1
    const line = viewOf(buf)
    const words = this.words
    let i = 0
    for (; i + 4 <= length; i += 4) if (line.getUint32(from + i) !== words.getUint32(i)) return -1
    for (; i < length; i++) if (buf[from + i] !== this.bytes[i]) return -1
    return from + length
  }

  remember(buf: Buffer, from: number, to: number, created: number, lane: string, priority: number): void {
    this.length = to - from <= this.bytes.length ? to - from : -1
    if (this.length >= 0) this.bytes.set(buf.subarray(from, to))
    this.created = created
    this.lane = lane
    this.priority = priority
  }
}

const lastMiddle = new LastMiddle()

/**
 * The bytes between two quotes as a string: read by JSON where they hold an escape, or a quote or
 * control character, which JSON refuses unless escaped. The string is made first and searched
 * with one native regular expression: cheaper than looking at each byte in JavaScript.
 */
function messageString(buf: Buffer, from: number, to: number): string | undefined {
  const text = utf8(buf, from, to)
  return PLAIN.test(text) ? text : escapedString(buf, from - 1, to + 1)
}

/** Reads a line's middle from `from` (see LastMiddle) into lastMiddle; the position after it, or -1. */
function middle(buf: Buffer, from: number, end: number): number {
  let at = after(buf, from, TIMESTAMP)
  if (at < 0) return -1
  // UTF-8, as JSON reads it: the same bytes as latin1 may be a date where the text is none.
  const created = lastTime.read(buf, at, end, utf8)
  at = after(buf, lastTime.end, LANE)
  if (at < 0) return -1
  const lane = lastLane.read(buf, at, end, utf8)
  // (Lines sharing the last middle skip this function: the lane is looked at once a middle.)
  if (!PLAIN.test(lane)) return -1
  at = digits(buf, after(buf, lastLane.end, PRIORITY), end)
  const priority = parsed.value
  at = after(buf, at, MESSAGE)
  if (at >= 0) lastMiddle.remember(buf, from, at, created, lane, priority)
  return at
}

export function parseJobLine(buf: Buffer, start: number, end: number, laneKey: string): RestoredJob | undefined {
  let at = digits(buf, after(buf, start, JOB_NUM), end)
  const jobNum = parsed.value
  at = after(buf, at, HASH)
  if (at < 0) return undefined
  // A hash a known scheme derives from the number is kept as that scheme: no string is made. Such
  // a hash is 40 hex digits, so its closing quote is looked for there first.
  const scheme = at + 40 < end && buf[at + 40] === QUOTE ? hashSchemes.derivingBytes(buf, at, at + 40, jobNum) : undefined
  const hashEnd = scheme !== undefined ? at + 40 : quote(buf, at, end)
  if (hashEnd < 0) return undefined
  if (scheme === undefined && !plainAscii(buf, at, hashEnd)) return undefined
  const hash = scheme === undefined ? latin1(buf, at, hashEnd) : undefined
  if (buf[end - 1] !== CLOSE_BRACE || buf[end - 2] !== QUOTE) return undefined
  const messageEnd = end - 2
  at = lastMiddle.match(buf, hashEnd, messageEnd)
  if (at < 0) {
    at = middle(buf, hashEnd, end)
    // (A line cut short after `"message":"` would otherwise read as an empty message.)
    if (at < 0 || at > messageEnd) return undefined
  }
  const { created, lane, priority } = lastMiddle
  // The message runs to the line's last quote; with escapes inside, JSON reads it.
  const message = messageString(buf, at, messageEnd)
  if (message === undefined) return undefined
  if (jobNum < 1 || !Number.isSafeInteger(jobNum) || priority > MAX_PRIORITY) return undefined
  if (Number.isNaN(created)) return undefined
  return { jobNum, hash: hash === '' ? undefined : hash, scheme, created, lane: lane !== '' ? lane : laneKey, priority, message, attempts: undefined, notBefore: undefined, unique: undefined, group: undefined }
}
