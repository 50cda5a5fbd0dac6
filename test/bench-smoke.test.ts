import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from './helpers/daemon'

const run = promisify(execFile)

// Keeps bench/ from rotting: one tiny workload, no other servers needed. Figures are not checked
// here (speed is measured by `npm run bench`, not by tests); that it runs and measures is.
t.test('the benchmark suite runs its smoke workload', async (t) => {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'dist', 'bench', 'suite.js'), '--smoke'], { timeout: 60_000 })
  const row = /\| smoke: schedule \| dispenserd \(node client\) \| ([\d,]+) jobs\/s \| ([\d.]+)× bare uWS ceiling/.exec(stdout)
  t.ok(row, stdout)
  t.ok(Number(row![1]!.replace(/,/g, '')) > 0, 'a rate was measured')
})
