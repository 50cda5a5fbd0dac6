import t from 'tap'
import { type ConfigSources, resolveConfig } from '../src/config'
import { planReload } from '../src/reload'

/** Lane settings in the config file: consumer lane blocks (no runner), runner lanes' scheduling keys, reloads. */

function config(lanes: unknown): ReturnType<typeof resolveConfig>['config'] {
  const sources: ConfigSources = { flags: {}, env: {}, root: '/srv', cwd: '/srv', file: { name: 'config.json', values: { lanes } } }
  return resolveConfig(sources).config
}

t.test('a block without a runner is a consumer lane with scheduling settings only', (t) => {
  const c = config({ emails: { unique_for: 1.5 }, thumbs: { runner: 'exec', command: ['/bin/true'], unique_for: 60 } })
  t.same(c.lanes.map((l) => l.lane), ['thumbs'], 'only runner lanes get runners')
  t.match({ ...c.lane_settings }, { emails: { uniqueForMs: 1500, keepFinishedMs: 3_600_000 }, thumbs: { uniqueForMs: 60_000 } })
  t.end()
})

t.test('a consumer lane block refuses other keys, suggesting the near ones', (t) => {
  t.throws(() => config({ emails: { unique_fro: 5 } }), { message: 'config.json: unknown setting "lanes.emails.unique_fro" (did you mean "unique_for"?)' })
  t.throws(() => config({ emails: { concurrency: 2 } }), { message: /lanes.emails.concurrency" \(a lane served by a runner names it in "runner"\)/ })
  t.throws(() => config({ emails: { unique_for: -1 } }), { message: 'config.json: lane "emails": "unique_for" must be a number of seconds from 0 to 31536000' })
  t.throws(() => config({ emails: { group_weights: { a: 0 } } }), { message: /"group_weights" must be an object of group names and whole weights from 1 to 1000, such as \{"big-customer": 3\}; "a" has 0/ })
  t.end()
})

t.test('scheduling settings apply at once on a reload, runner lanes\' included', (t) => {
  const before = config({ emails: { unique_for: 1 }, thumbs: { runner: 'exec', command: ['/bin/true'] } })
  const after = config({ emails: { unique_for: 2 }, thumbs: { runner: 'exec', command: ['/bin/true'], unique_for: 5 } })
  const plan = planReload(before, after)
  t.same(plan.needsRestart, [])
  t.same(Object.keys(plan.changed).sort(), ['lanes.emails (scheduling)', 'lanes.thumbs (scheduling)'])
  t.equal(plan.config.lane_settings.thumbs!.uniqueForMs, 5000)
  t.end()
})
