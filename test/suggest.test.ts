import t from 'tap'
import { closest, editDistance, unknownKey } from '../src/suggest'

t.test('edit distance counts a swap of neighbours as one edit', (t) => {
  t.equal(editDistance('concurency', 'concurrency'), 1)
  t.equal(editDistance('auth_tkoen', 'auth_token'), 1, 'swap')
  t.equal(editDistance('retry', 'retries'), 3)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('same', 'same'), 0)
  t.end()
})

t.test('only a close name is suggested, the closest first', (t) => {
  t.equal(closest('retry', ['retries', 'timeout']), 'retries')
  t.equal(closest('adress', ['address', 'max_lanes']), 'address')
  t.equal(closest('key', ['max', 'type']), undefined, 'three edits of three letters is not a typo')
  t.equal(closest('colour', ['address', 'log_level', 'data_dir']), undefined)
  t.equal(closest('max_lane', ['max_lanes', 'max_body_bytes']), 'max_lanes')
  t.end()
})

t.test('the message names the path, then a suggestion, a hint or what the block takes', (t) => {
  t.equal(unknownKey({ base: 1, mx: 2 }, ['base', 'max'], 'lanes.a.backoff'), 'unknown setting "lanes.a.backoff.mx" (did you mean "max"?)')
  t.equal(unknownKey({ zzz: 1 }, ['base', 'max'], 'lanes.a.backoff'), 'unknown setting "lanes.a.backoff.zzz" ("lanes.a.backoff" takes: base, max)')
  t.equal(unknownKey({ zzz: 1 }, ['options'], 'lanes.m', 'put it under "options"'), 'unknown setting "lanes.m.zzz" (put it under "options")')
  t.equal(unknownKey({ base: 1 }, ['base', 'max'], 'x'), undefined)
  t.end()
})
