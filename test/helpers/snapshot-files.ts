import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'
import type { SnapshotSink } from '../../src/persist/snapshot'
import type { RestoredJob } from '../../src/queue/queue'
import { removeDir, tempDir } from './daemon'

/** A sink that keeps what the snapshot reader passes on, lane by lane. */
export function collect(): SnapshotSink & { lanes: string[]; jobs: RestoredJob[] } {
  const lanes: string[] = []
  const jobs: RestoredJob[] = []
  return { lanes, jobs, lane: (name) => lanes.push(name), job: (job) => jobs.push(job) }
}

/** Writes each content given to a new file in a directory removed after the test; returns its path. */
export function snapshotFiles(t: Test): { dir: string; file: (content: string) => string } {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  let n = 0
  return {
    dir,
    file: (content) => {
      const name = path.join(dir, `q${n++}.json`)
      writeFileSync(name, content)
      return name
    },
  }
}
