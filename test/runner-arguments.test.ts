import t from 'tap'
import { ApiError } from '../src/errors'
import { parseRunnerMessage } from '../src/runners/arguments'
import { LaneConfigError, parseLanes } from '../src/runners/lanes'
import type { RunnerLane } from '../src/runners/lanes'

/** What a job may carry to a runner lane, checked when it is scheduled; and the lane settings behind it. */

function lane(block: Record<string, unknown>): RunnerLane {
  return parseLanes({ work: { runner: 'exec', command: ['/bin/true'], ...block } })[0]!
}

function message(args: unknown): string {
  return JSON.stringify({ arguments: args })
}

/** The names issue 9 found a denylist let through, each able to run code of the caller's choosing. */
const BYPASSES = ['PYTHONWARNINGS', 'BROWSER', 'JAVA_TOOL_OPTIONS', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_SSH_COMMAND', 'OPENSSL_CONF', 'PERL5DB', 'LUA_INIT', 'PYTHONUSERBASE', 'NODE_EXTRA_CA_CERTS', 'http_proxy']

t.test('an exec lane without "arguments" or "allowed_env" takes no arguments at all', (t) => {
  const work = lane({})
  t.same(parseRunnerMessage(work, message({})).arguments, {})
  t.same(parseRunnerMessage(work, '{}').arguments, {})
  for (const name of ['SRC', ...BYPASSES]) {
    t.throws(() => parseRunnerMessage(work, message({ [name]: 'x' })), { constructor: ApiError, codeName: 'invalid_data', message: `argument "${name}": lane "work" takes no arguments (it declares neither "arguments" nor "allowed_env")` }, name)
  }
  t.end()
})

t.test('allowed_env admits the names and prefixes it lists, and nothing else', (t) => {
  const work = lane({ allowed_env: ['SRC', 'WIDTH', 'THUMB_*'] })
  t.same(parseRunnerMessage(work, message({ SRC: 'a.png', WIDTH: 320, THUMB_FORMAT: 'webp', THUMB_: true })).arguments, { SRC: 'a.png', WIDTH: 320, THUMB_FORMAT: 'webp', THUMB_: true })
  for (const name of [...BYPASSES, 'PATH', 'LD_PRELOAD', 'SRCX', 'src', 'THUMB']) {
    t.throws(() => parseRunnerMessage(work, message({ SRC: 'a', [name]: 'x' })), { codeName: 'invalid_data', message: `argument "${name}" is not allowed on lane "work" (allowed_env: SRC, WIDTH, THUMB_*)` }, name)
  }
  t.throws(() => parseRunnerMessage(work, message({ 'A-B': 'x' })), { message: /^argument "A-B": names must be environment variable names/ })
  t.throws(() => parseRunnerMessage(work, message({ SRC: { nested: 1 } })), { message: 'argument "SRC" must be a string, number or boolean' })
  t.end()
})

t.test('allowed_env is checked at start: no "*", no pattern that admits a loader or interpreter variable', (t) => {
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ allowed_env: ['*'] }, /^lane "work": allowed_env\[0\]: "\*" would let a job set any variable/],
    [{ allowed_env: ['SRC', 'LD_*'] }, /^lane "work": allowed_env\[1\]: "LD_\*" would admit LD_\*, which changes how a program loads or runs: .*declare the variable in "arguments"/],
    [{ allowed_env: ['P*'] }, /allowed_env\[0\]: "P\*" would admit PATH/],
    [{ allowed_env: ['PATH'] }, /"PATH" would admit PATH/],
    [{ allowed_env: ['PYTHONWARNINGS'] }, /would admit PYTHON\*/],
    [{ allowed_env: ['GIT_*'] }, /would admit GIT_\*/],
    [{ allowed_env: ['HTTP_PROXY'] }, /would admit HTTP_PROXY/],
    [{ allowed_env: ['http_proxy'] }, /would admit HTTP_PROXY/],
    [{ allowed_env: ['DISPENSERD_X'] }, /would admit DISPENSERD_\*/],
    [{ allowed_env: ['A B'] }, /allowed_env\[0\] must be an environment variable name/],
    [{ allowed_env: ['A*B'] }, /allowed_env\[0\] must be an environment variable name/],
    [{ allowed_env: [7] }, /allowed_env\[0\] must be an environment variable name/],
    [{ allowed_env: 'SRC' }, /"allowed_env" must be a list of environment variable names/],
    [{ allowed_env: ['SRC'], arguments: [{ key: 'SRC' }] }, /give "arguments" or "allowed_env", not both/],
  ]
  for (const [block, wanted] of refused) t.throws(() => lane(block), { constructor: LaneConfigError, message: wanted }, JSON.stringify(block))
  t.throws(() => parseLanes({ hooks: { runner: 'http', target: 'http://127.0.0.1/', allowed_env: ['SRC'] } }), { message: /unknown setting "lanes.hooks.allowed_env"/ }, 'not on http lanes')
  t.same(lane({ allowed_env: [] }).allowedEnv, [], 'an empty list: no arguments')
  t.same(lane({ allowed_env: ['SRC', 'THUMB_*'] }).allowedEnv, [{ name: 'SRC' }, { prefix: 'THUMB_' }])
  t.end()
})

t.test('declared arguments may name any variable on purpose; http lanes take any JSON', (t) => {
  const declared = lane({ arguments: [{ key: 'PYTHONPATH' }] })
  t.same(parseRunnerMessage(declared, message({ PYTHONPATH: '/opt/lib' })).arguments, { PYTHONPATH: '/opt/lib' })
  const hooks = parseLanes({ hooks: { runner: 'http', target: 'http://127.0.0.1/' } })[0]!
  t.same(parseRunnerMessage(hooks, message({ order: { id: 1 } })).arguments, { order: { id: 1 } })
  t.end()
})

/** An array nested `depth` levels deep, built without recursion. */
function nested(depth: number): unknown {
  let value: unknown = 'bottom'
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

/** A message whose argument `key` is nested `depth` levels deep, written as text (JSON.stringify cannot). */
function deepMessage(key: string, depth: number): string {
  return `{"arguments": {"${key}": ${'['.repeat(depth)}"bottom"${']'.repeat(depth)}}}`
}

t.test('a deep value is refused naming its argument, never by a stack overflow', (t) => {
  const declared = lane({ arguments: [{ key: 'SRC' }] })
  // JSON.parse takes 20,000 levels; JSON.stringify of them throws a RangeError (once a 500).
  t.throws(() => parseRunnerMessage(declared, deepMessage('SRC', 20_000)), { constructor: ApiError, codeName: 'invalid_data', message: 'argument "SRC" is nested more than 64 levels deep' })
  t.throws(() => parseRunnerMessage(declared, message({ SRC: nested(3) })), { codeName: 'invalid_data', message: 'argument "SRC" must be a string, got an array' })
  t.throws(() => parseRunnerMessage(declared, message({ SRC: { a: 1 } })), { message: 'argument "SRC" must be a string, got an object' })
  const integer = lane({ arguments: [{ key: 'N', type: 'integer' }] })
  t.throws(() => parseRunnerMessage(integer, message({ N: 'x'.repeat(100_000) })), { message: /^argument "N" must be an integer, got "x{59}…$/ }, 'a long value is cut short')
  const hooks = parseLanes({ hooks: { runner: 'http', target: 'http://127.0.0.1/' } })[0]!
  t.throws(() => parseRunnerMessage(hooks, deepMessage('order', 20_000)), { message: 'argument "order" is nested more than 64 levels deep' })
  t.throws(() => parseRunnerMessage(hooks, message({ order: { items: nested(65) } })), { message: /"order" is nested more than 64/ })
  t.same(parseRunnerMessage(hooks, message({ order: nested(60) })).arguments, { order: nested(60) }, 'JSON of a sane depth passes')
  const wide = Array.from({ length: 200_000 }, (_, i) => i)
  t.equal((parseRunnerMessage(hooks, message({ wide })).arguments.wide as number[]).length, 200_000, 'a wide value is no problem')
  t.end()
})

t.test('a NUL character in a value bound for the environment is refused when scheduled, naming the argument', (t) => {
  const declared = lane({ arguments: [{ key: 'SRC' }] })
  t.throws(() => parseRunnerMessage(declared, message({ SRC: 'a\u0000b' })), { codeName: 'invalid_data', message: 'argument "SRC" contains a NUL character, which an environment variable cannot hold' })
  const allowed = lane({ allowed_env: ['SRC'] })
  t.throws(() => parseRunnerMessage(allowed, message({ SRC: '\u0000' })), { message: /^argument "SRC" contains a NUL character/ })
  const hooks = parseLanes({ hooks: { runner: 'http', target: 'http://127.0.0.1/' } })[0]!
  t.same(parseRunnerMessage(hooks, message({ text: 'a\u0000b' })).arguments, { text: 'a\u0000b' }, 'JSON carries a NUL to an http endpoint well')
  t.end()
})
