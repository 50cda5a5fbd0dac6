import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { containerDaemon } from './helpers/container-lanes'
import { engineSkip, testEngine, uniqueNamespace } from './helpers/engine'

/**
 * README's container example, run as written on the test engine (only `engine` and `namespace`
 * differ): its config block, the jobs its curl lines schedule, and the outputs its comments show;
 * then its jq filter, with `filter_file` in place of `command`.
 */

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
const section = readme.slice(readme.indexOf('### Containers as jobs'), readme.indexOf('### Dispatch Jobs from git'))
const config = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(section)![1]!) as { lanes: Record<string, Record<string, unknown>> }
const example = /```bash\n([\s\S]*?)\n```/.exec(section)![1]!
const filter = /```jq\n([\s\S]*?)\n```/.exec(section)![1]!
/** The messages the curl lines schedule, in order. */
const messages = [...example.matchAll(/^curl -s localhost:8282\/schedule -d '(.*)'$/gm)].map((m) => JSON.parse(m[1]!) as { lane: string; message: string })
/** The outputs the comments show, in order. */
const outputs = [...example.matchAll(/"output":"(.*?)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string)

function lane(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...config.lanes.thumbs, engine: testEngine!.url, namespace: uniqueNamespace(), ...over }
}

t.test('README’s container example runs as written', { skip: engineSkip }, async (t) => {
  t.equal(messages.length, 2)
  t.equal(outputs.length, 2)
  const c = await containerDaemon(t, { thumbs: lane() })
  const hashes: string[] = []
  for (const { lane: name, message } of messages) hashes.push(await c.schedule(name, (JSON.parse(message) as { arguments: Record<string, unknown> }).arguments))
  t.match(await c.settled(hashes[0]!), { state: 'succeeded', attempts: 1, last_run: { exit_code: 0, output: outputs[0] } })
  t.match(await c.settled(hashes[1]!), { state: 'dead', attempts: 2, last_run: { reason: 'exit code 3', exit_code: 3, output: outputs[1] } })
})

t.test('README’s jq filter makes each job’s command and refuses what is not a PNG', { skip: engineSkip }, async (t) => {
  const { command: _command, ...rest } = lane({ filter_file: 'thumbs.jq' })
  const c = await containerDaemon(t, { thumbs: rest }, { files: { 'thumbs.jq': filter } })
  const png = await c.schedule('thumbs', { SRC: 'a.png' }, 7)
  t.match(await c.settled(png), { state: 'succeeded', last_run: { output: 'resizing a.png at priority 7\n' } })
  const gif = await c.schedule('thumbs', { SRC: 'a.gif' })
  t.match(await c.settled(gif), { state: 'dead', attempts: 1, last_run: { reason: 'filter: jq: error: only PNG files: a.gif' } })
})
