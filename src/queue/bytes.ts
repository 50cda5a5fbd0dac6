/**
 * Appends JSON text to a Buffer without building intermediate strings: listing or saving millions
 * of jobs as strings made garbage collection the largest cost of a snapshot.
 */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')
/** Character codes the JSON writers and readers write and look for as bytes. */
export const QUOTE = 0x22
export const BACKSLASH = 0x5c
export const COMMA = 0x2c
export const OPEN_BRACE = 0x7b
export const CLOSE_BRACE = 0x7d
/** Up to this length bytes are copied in JavaScript rather than by TypedArray#set (a call into a builtin). */
const SHORT_BYTES = 16

/** Strings that JSON.stringify would change: quote, backslash, control characters, surrogates. */
const NEEDS_ESCAPING = /["\\\u0000-\u001f\ud800-\udfff]/

export class ByteWriter {
  buf: Buffer
  pos = 0

  constructor(private readonly pieceBytes: number) {
    this.buf = Buffer.allocUnsafe(pieceBytes)
  }

  /** Room for at least `bytes` more (grows the current piece if one item needs more). */
  reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes))
    this.buf.copy(bigger, 0, 0, this.pos)
    this.buf = bigger
  }

  get full(): boolean {
    return this.pos >= this.pieceBytes
  }

  /**
   * Text known to be ASCII (keys, numbers, hex, timestamps). Copied in JavaScript: for short
   * strings that is several times faster than a call into Buffer#write.
   */
  ascii(text: string): void {
    const { buf } = this
    let p = this.pos
    for (let i = 0; i < text.length; i++) buf[p++] = text.charCodeAt(i)
    this.pos = p
  }

  /**
   * Bytes made beforehand, such as a reply's constant pieces. Hot paths write constants this way
   * rather than with `ascii`: reading a string's characters in JavaScript starts with a load of
   * `charCodeAt`, and once `ascii` has seen strings of several representations (flat, cons, sliced,
   * internalized) the daemon's optimized code made that load a generic inline-cache call on every
   * use: 42% of a batch receive's time (perf), where reading bytes is one typed-array access.
   */
  bytes(source: Uint8Array): void {
    const { buf } = this
    if (source.length > SHORT_BYTES) {
      buf.set(source, this.pos)
      this.pos += source.length
      return
    }
    let p = this.pos
    for (let i = 0; i < source.length; i++) buf[p++] = source[i]!
    this.pos = p
  }

  /** One byte: an ASCII character's code (a quote, a brace). */
  byte(code: number): void {
    this.buf[this.pos++] = code
  }

  /** A non-negative integer in decimal (digits written in place: no string per number). */
  uint(n: number): void {
    const { buf } = this
    let digits = 1
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++
    let p = this.pos + digits
    this.pos = p
    do {
      buf[--p] = 48 + (n % 10)
      n = Math.floor(n / 10)
    } while (n > 0)
  }

  /** Eight lowercase hex digits of a 32-bit value. */
  hex32(x: number): void {
    const { buf } = this
    for (let shift = 28; shift >= 0; shift -= 4) buf[this.pos++] = HEX_DIGITS[(x >>> shift) & 15]!
  }

  /**
   * A JSON string literal, byte-for-byte what JSON.stringify would produce. The text is copied by
   * Buffer#write (native), then the bytes written are checked: exactly one per character means it
   * is all ASCII, which needs escaping only for control characters, quote and backslash; anything
   * else is written again by the general path. Reading the characters in JavaScript instead cost a
   * batch receive a third of its time (see `bytes`). The caller reserves `jsonStringBound(text)`
   * first: Buffer#write stops silently at the end of the buffer, and a text cut short there can
   * still pass the one-byte-a-character check (how a long stored hash once cut a reply short).
   */
  jsonString(text: string): void {
    const { buf } = this
    const start = this.pos
    buf[start] = QUOTE
    const written = buf.write(text, start + 1)
    const end = start + 1 + written
    let plain = written === text.length
    for (let i = start + 1; plain && i < end; i++) {
      const c = buf[i]!
      plain = c >= 0x20 && c !== QUOTE && c !== BACKSLASH
    }
    if (!plain) return this.anyJsonString(text)
    buf[end] = QUOTE
    this.pos = end + 1
  }

  private anyJsonString(text: string): void {
    if (NEEDS_ESCAPING.test(text)) {
      this.pos += this.buf.write(JSON.stringify(text), this.pos, 'utf8')
      return
    }
    this.buf[this.pos++] = QUOTE
    this.pos += this.buf.write(text, this.pos, 'utf8')
    this.buf[this.pos++] = QUOTE
  }

  /** The bytes written so far, valid until the next write: the writer starts over in the same buffer. */
  rewind(): Buffer {
    const piece = this.buf.subarray(0, this.pos)
    this.pos = 0
    return piece
  }

  /** The bytes written so far, as a piece of its own; the writer starts a fresh buffer. */
  take(): Buffer {
    const piece = this.buf.subarray(0, this.pos)
    this.buf = Buffer.allocUnsafe(this.pieceBytes)
    this.pos = 0
    return piece
  }
}

/** An upper bound of the UTF-8 bytes of `text` as a JSON string literal. */
export function jsonStringBound(text: string): number {
  return text.length * 6 + 2
}
