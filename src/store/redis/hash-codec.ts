import { hash, timingSafeEqual } from 'node:crypto'

/**
 * Job hashes, 40 hex digits: the lane's id (8), the job's member in its lane (12) and a tag (20):
 * the first 80 bits of an HMAC-SHA256 of the other 20 under a secret kept in Redis. Any frontend
 * finds a job from its hash alone, with no index (lane id -> lane, member -> job), and a hash that
 * was not made here is refused without a Redis call. Imported jobs keep their old hash (a record
 * field, and an index used only when the tag does not verify).
 */
export class HashCodec {
  /** HMAC-SHA256's padded keys, ready for the 20 hex digits of a body and for the inner digest. */
  private readonly inner = Buffer.alloc(64 + 20)
  private readonly outer = Buffer.alloc(64 + 32)

  constructor(secret: Buffer) {
    // HMAC (RFC 2104) from two one-shot digests: createHmac makes a native object per call, which
    // cost more than the digests at a hash per job scheduled, taken and acked. Keys over 64
    // bytes would be hashed first; the secret is 32.
    if (secret.length > 64) throw new Error('the hash secret must be at most 64 bytes')
    for (let i = 0; i < 64; i++) {
      this.inner[i] = (secret[i] ?? 0) ^ 0x36
      this.outer[i] = (secret[i] ?? 0) ^ 0x5c
    }
  }

  encode(laneId: string, member: string): string {
    return laneId + member + this.tag(laneId + member)
  }

  /** The lane id and member a hash names, or undefined when it is not one of ours. */
  decode(hash: string): { laneId: string; member: string } | undefined {
    if (!/^[0-9a-f]{40}$/.test(hash)) return undefined
    const body = hash.slice(0, 20)
    const expected = Buffer.from(this.tag(body), 'latin1')
    if (!timingSafeEqual(expected, Buffer.from(hash.slice(20), 'latin1'))) return undefined
    return { laneId: hash.slice(0, 8), member: hash.slice(8, 20) }
  }

  private tag(body: string): string {
    this.inner.write(body, 64, 'latin1')
    hash('sha256', this.inner, 'buffer').copy(this.outer, 64)
    return hash('sha256', this.outer, 'hex').slice(0, 20)
  }
}
