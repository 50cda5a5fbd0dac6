import { randomBytes } from 'node:crypto'
import type { ByteWriter } from './bytes'

/**
 * Job hashes: 40 hex digits, unique, and free to store. A new job's hash is derived from its number
 * whenever it is shown: a random 96-bit prefix chosen per process, then the job number run through
 * a keyed permutation of 64 bits (a four-round Feistel network on two 32-bit halves). Hashes so look
 * random, never repeat within a process (the permutation is one-to-one) and differ between
 * processes (the prefix). Jobs restored from a snapshot keep the hash they were saved with; where
 * that hash is an earlier process's derivation (see HashSchemes), they keep a reference to that
 * process's scheme instead of the string.
 */
export class HashScheme {
  readonly prefix: string
  private readonly prefixBytes: Buffer
  private readonly keys: Uint32Array
  /** The 28 bytes the scheme is made of, as hex: saved in state.json so a later process can adopt it. */
  readonly key: string
  /** The two halves of the last permutation (kept in fields to spare an allocation per hash). */
  private left = 0
  private right = 0

  constructor(entropy: Buffer = randomBytes(28)) {
    this.prefix = entropy.subarray(0, 12).toString('hex')
    this.prefixBytes = Buffer.from(this.prefix, 'latin1')
    this.keys = new Uint32Array(entropy.buffer.slice(entropy.byteOffset + 12, entropy.byteOffset + 28))
    this.key = entropy.subarray(0, 28).toString('hex')
  }

  hashOf(jobNum: number): string {
    this.permute(jobNum)
    return this.prefix + hex8(this.left) + hex8(this.right)
  }

  /** Writes the same 40 digits as `hashOf`, without making a string. */
  writeHash(jobNum: number, out: ByteWriter): void {
    this.permute(jobNum)
    out.bytes(this.prefixBytes)
    out.hex32(this.left)
    out.hex32(this.right)
  }

  /**
   * The job number whose hash (made by this scheme) is `hash`, or undefined when `hash` is not one
   * of this process's hashes: the permutation run backwards, so a held job is found by its number
   * and no hash string is made or kept for it.
   */
  jobNumOf(hash: string): number | undefined {
    if (hash.length !== 40 || !hash.startsWith(this.prefix)) return undefined
    return this.unpermute(hexWord(hash, 24), hexWord(hash, 32))
  }

  /** The job number whose hash (with this scheme's prefix, not checked here) starts at `from`, or undefined. */
  numberAt(buf: Uint8Array, from: number): number | undefined {
    return this.unpermute(hexWordBytes(buf, from + 24), hexWordBytes(buf, from + 32))
  }

  /** Whether the 24 bytes at `from` are this scheme's prefix. */
  hasPrefixAt(buf: Uint8Array, from: number): boolean {
    const prefix = this.prefixBytes
    for (let i = 0; i < 24; i++) if (buf[from + i] !== prefix[i]) return false
    return true
  }

  /** The job number whose permutation is `left`/`right` (-1 for a half that was not hex), or undefined. */
  private unpermute(left: number, right: number): number | undefined {
    if (left < 0 || right < 0) return undefined
    for (let round = 3; round >= 0; round--) {
      const previous = (right ^ mix(left ^ this.keys[round]!)) >>> 0
      right = left
      left = previous
    }
    const jobNum = left * 0x100000000 + right
    return Number.isSafeInteger(jobNum) ? jobNum : undefined
  }

  private permute(jobNum: number): void {
    let left = Math.floor(jobNum / 0x100000000) >>> 0
    let right = jobNum >>> 0
    for (let round = 0; round < 4; round++) {
      const next = (left ^ mix(right ^ this.keys[round]!)) >>> 0
      left = right
      right = next
    }
    this.left = left
    this.right = right
  }
}

/** murmur3's 32-bit finalizer: a fast, well-spread mixing function. */
function mix(x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

/** Eight lowercase hex digits of `text` at `at` as a 32-bit value; -1 for anything else (upper case too: hashes are compared as written). */
function hexWord(text: string, at: number): number {
  let x = 0
  for (let i = at; i < at + 8; i++) {
    const digit = hexDigit(text.charCodeAt(i))
    if (digit < 0) return -1
    x = x * 16 + digit
  }
  return x
}

/** Each byte's value as a lowercase hex digit, or -1 (one load per digit: a snapshot's load reads 16 a job). */
const HEX_VALUES = Int8Array.from({ length: 256 }, (_, c) => hexDigit(c))

/** hexWord over bytes. */
function hexWordBytes(buf: Uint8Array, at: number): number {
  let x = 0
  for (let i = at; i < at + 8; i++) {
    const digit = HEX_VALUES[buf[i]!]!
    if (digit < 0) return -1
    x = x * 16 + digit
  }
  return x
}

function hexDigit(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1
}

const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function hex8(x: number): string {
  return HEX_PAIRS[x >>> 24]! + HEX_PAIRS[(x >>> 16) & 255]! + HEX_PAIRS[(x >>> 8) & 255]! + HEX_PAIRS[x & 255]!
}

/** The scheme of this process, shared by every job scheduled in it. */
export const processHashes = new HashScheme()

/** A saved scheme's key: 56 lowercase hex digits. */
const KEY_PATTERN = /^[0-9a-f]{56}$/

/**
 * The schemes whose hashes this process recognises: its own, and those of earlier processes on the
 * same data directory (state.json names them). A job restored with a hash that its scheme derives
 * from its number keeps a reference to the scheme instead of a 40-character string and needs no
 * entry in a hash index: a million restored jobs load in less time and take less memory. A hash
 * no known scheme derives (the original daemon's, or from a data directory whose state.json is
 * gone) is kept as it is, as before.
 */
export class HashSchemes {
  /** Earlier schemes some restored job refers to (saved again with the next snapshot). */
  private readonly used = new Set<HashScheme>()
  /**
   * Every scheme here by the first 32 bits of its prefix, so a hash leads to the one scheme that
   * can have made it in one look-up, however many keys state.json names (a key stays while a dead
   * job of its process does, so they can pile up over restarts). Two schemes never share an entry.
   * Keyed as signed 32-bit integers (`| 0`), which V8 keeps unboxed: a key above 2^31 was a heap
   * number to hash on every line of a snapshot.
   */
  private readonly byWord = new Map<number, HashScheme>()
  /** The scheme derivingBytes last found (noted as used already). */
  private lastDeriving: HashScheme | undefined

  constructor(readonly current: HashScheme) {
    this.byWord.set(hexWord(current.prefix, 0) | 0, current)
  }

  /**
   * Recognises hashes of the scheme saved as `key` (from state.json); false for a malformed key. A
   * key whose prefix starts as a known scheme's does (only a hand-edited state.json has two with
   * one prefix) is not adopted: a hash could then lead to the wrong one of the two, and its job be
   * found by no hash. Its jobs keep their hashes as strings instead, as without hash_keys.
   */
  adopt(key: string): boolean {
    if (!KEY_PATTERN.test(key)) return false
    const word = hexWord(key, 0) | 0
    if (!this.byWord.has(word)) this.byWord.set(word, new HashScheme(Buffer.from(key, 'hex')))
    return true
  }

  /** The scheme that derives `hash` from `jobNum`, if one does; for a restored job. */
  deriving(hash: string, jobNum: number): HashScheme | undefined {
    const scheme = this.of(hash)
    return scheme !== undefined && scheme.jobNumOf(hash) === jobNum ? this.using(scheme) : undefined
  }

  /**
   * deriving() over the saved hash's bytes, `buf[from..to)`: the snapshot reader makes no string
   * where a scheme matches. Consecutive jobs of a snapshot mostly share a scheme, so the last one
   * matched is tried first: a comparison of its prefix instead of a look-up, and no note of its use
   * again (a tenth of a million-job load's time went to these two).
   */
  derivingBytes(buf: Uint8Array, from: number, to: number, jobNum: number): HashScheme | undefined {
    if (to - from !== 40) return undefined
    let scheme = this.lastDeriving
    if (scheme === undefined || !scheme.hasPrefixAt(buf, from)) {
      scheme = this.byWord.get(hexWordBytes(buf, from) | 0)
      if (scheme === undefined || !scheme.hasPrefixAt(buf, from)) return undefined
    }
    if (scheme.numberAt(buf, from) !== jobNum) return undefined
    if (scheme !== this.lastDeriving) this.lastDeriving = this.using(scheme)
    return scheme
  }

  /** The scheme whose prefix `hash` has, or undefined. */
  of(hash: string): HashScheme | undefined {
    if (hash.startsWith(this.current.prefix)) return this.current
    const scheme = this.byWord.get(hexWord(hash, 0) | 0)
    return scheme !== undefined && hash.startsWith(scheme.prefix) ? scheme : undefined
  }

  /** `scheme`, noted as used when it is an earlier process's (see keys). */
  private using(scheme: HashScheme): HashScheme {
    if (scheme !== this.current) this.used.add(scheme)
    return scheme
  }

  /**
   * The keys to save: this process's and the earlier ones jobs restored at start refer to (kept
   * while this process runs, even once those jobs are gone: a key is dropped by the first restart
   * that restores no job of it).
   */
  keys(): string[] {
    return [this.current.key, ...[...this.used].map((scheme) => scheme.key)]
  }
}

/** The schemes this process recognises (one set per process, as jobs' hashes are). */
export const hashSchemes = new HashSchemes(processHashes)
