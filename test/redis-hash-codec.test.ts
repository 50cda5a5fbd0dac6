import { createHmac, randomBytes } from 'node:crypto'
import t from 'tap'
import { HashCodec } from '../src/store/redis/hash-codec'

/**
 * Job hashes are the lane id and member with a tag: the first 80 bits of HMAC-SHA256 under the
 * secret kept in Redis. The codec computes it from two one-shot digests (cheaper than createHmac);
 * the hashes must stay exactly those of the standard HMAC, so jobs scheduled by frontends of
 * another version (or before an upgrade) keep verifying.
 */
t.test('hashes are the standard HMAC-SHA256 tag, and only ours decode', async (t) => {
  for (let round = 0; round < 50; round++) {
    const secret = randomBytes(32)
    const codec = new HashCodec(secret)
    const laneId = randomBytes(4).toString('hex')
    const member = randomBytes(6).toString('hex')
    const expected = laneId + member + createHmac('sha256', secret).update(laneId + member).digest('hex').slice(0, 20)
    t.equal(codec.encode(laneId, member), expected)
    t.same(codec.decode(expected), { laneId, member })
    t.equal(new HashCodec(randomBytes(32)).decode(expected), undefined, 'another secret refuses it')
    const flipped = expected.slice(0, 39) + (expected[39] === '0' ? '1' : '0')
    t.equal(codec.decode(flipped), undefined, 'a changed tag is refused')
  }
})
