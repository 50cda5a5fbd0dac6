/**
 * Appends JSON text to a Buffer without building intermediate strings: listing or saving millions
 * of jobs as strings made garbage collection the largest cost of a snapshot.
 */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')
const QUOTE = 0x22
const BACKSLASH = 0x5c
/** Up to this length a string is copied in JavaScript rather than by Buffer#write. */
const SHORT_STRING = 256

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

  bytes(source: Uint8Array): void {
    this.buf.set(source, this.pos)
    this.pos += source.length
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

  /** A JSON string literal, byte-for-byte what JSON.stringify would produce. */
  jsonString(text: string): void {
    if (text.length <= SHORT_STRING) {
      // Printable ASCII needs neither escaping nor encoding; anything else takes the general path.
      const { buf } = this
      let p = this.pos
      buf[p++] = QUOTE
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i)
        if (c < 0x20 || c > 0x7e || c === QUOTE || c === BACKSLASH) {
          this.anyJsonString(text)
          return
        }
        buf[p++] = c
      }
      buf[p++] = QUOTE
      this.pos = p
      return
    }
    this.anyJsonString(text)
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
