import { randomBytes } from 'node:crypto'

/**
 * Job hashes: 40 hex digits, unique, and free to store. A new job's hash is derived from its number
 * whenever it is shown: a random 96-bit prefix chosen per process, then the job number run through
 * a keyed permutation of 64 bits (a four-round Feistel network on two 32-bit halves). Hashes so look
 * random, never repeat within a process (the permutation is one-to-one) and differ between
 * processes (the prefix). Jobs restored from a snapshot keep the hash they were saved with.
 */
export class HashScheme {
  private readonly prefix: string
  private readonly keys: Uint32Array

  constructor(entropy: Buffer = randomBytes(28)) {
    this.prefix = entropy.subarray(0, 12).toString('hex')
    this.keys = new Uint32Array(entropy.buffer.slice(entropy.byteOffset + 12, entropy.byteOffset + 28))
  }

  hashOf(jobNum: number): string {
    let left = Math.floor(jobNum / 0x100000000) >>> 0
    let right = jobNum >>> 0
    for (let round = 0; round < 4; round++) {
      const next = (left ^ mix(right ^ this.keys[round]!)) >>> 0
      left = right
      right = next
    }
    return this.prefix + hex8(left) + hex8(right)
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

const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function hex8(x: number): string {
  return HEX_PAIRS[x >>> 24]! + HEX_PAIRS[(x >>> 16) & 255]! + HEX_PAIRS[(x >>> 8) & 255]! + HEX_PAIRS[x & 255]!
}

/** The scheme of this process, shared by every job scheduled in it. */
export const processHashes = new HashScheme()
