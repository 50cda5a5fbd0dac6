import { randomBytes } from 'node:crypto'
import type { ByteWriter } from './bytes'

/**
 * Job hashes: 40 hex digits, unique, and free to store. A new job's hash is derived from its number
 * whenever it is shown: a random 96-bit prefix chosen per process, then the job number run through
 * a keyed permutation of 64 bits (a four-round Feistel network on two 32-bit halves). Hashes so look
 * random, never repeat within a process (the permutation is one-to-one) and differ between
 * processes (the prefix). Jobs restored from a snapshot keep the hash they were saved with.
 */
export class HashScheme {
  private readonly prefix: string
  private readonly prefixBytes: Buffer
  private readonly keys: Uint32Array
  /** The two halves of the last permutation (kept in fields to spare an allocation per hash). */
  private left = 0
  private right = 0

  constructor(entropy: Buffer = randomBytes(28)) {
    this.prefix = entropy.subarray(0, 12).toString('hex')
    this.prefixBytes = Buffer.from(this.prefix, 'latin1')
    this.keys = new Uint32Array(entropy.buffer.slice(entropy.byteOffset + 12, entropy.byteOffset + 28))
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
    let left = hexWord(hash, 24)
    let right = hexWord(hash, 32)
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
    const c = text.charCodeAt(i)
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1
    if (digit < 0) return -1
    x = x * 16 + digit
  }
  return x
}

const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function hex8(x: number): string {
  return HEX_PAIRS[x >>> 24]! + HEX_PAIRS[(x >>> 16) & 255]! + HEX_PAIRS[(x >>> 8) & 255]! + HEX_PAIRS[x & 255]!
}

/** The scheme of this process, shared by every job scheduled in it. */
export const processHashes = new HashScheme()
