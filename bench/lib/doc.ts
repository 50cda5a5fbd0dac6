import { type Check, type Row, checks, table } from './report'

/**
 * Folding a partial run (`--only`) into docs/benchmarks.md as it stands, so that the results of the
 * workloads not re-run, and the prose written around them by hand, stay. In the Results table the
 * rows of a re-run workload replace its old rows where they stood (a new workload goes at the end);
 * in the Targets table a target replaces the row of the same target. A line under the first
 * paragraph says which command re-measured which rows, since the header names another run.
 */
export function mergeDoc(doc: string, rows: Row[], targets: Check[], provenance: string): string | undefined {
  const lines = doc.split('\n')
  const merged = mergeTable(lines, '## Targets', checks(targets)) && mergeTable(lines, '## Results', table(rows))
  if (!merged) return undefined
  noteProvenance(lines, provenance)
  return lines.join('\n')
}

/** The first cell of a table row: the workload in Results, the target in Targets. */
function key(row: string): string {
  return row.split('|')[1]!.trim()
}

/** Replaces, in the table under `heading`, the rows whose key a row of `fresh` has. False if there is no such table. */
function mergeTable(lines: string[], heading: string, fresh: string): boolean {
  const at = lines.indexOf(heading)
  if (at < 0) return false
  let start = at + 1
  while (start < lines.length && !lines[start]!.startsWith('|')) start++
  let end = start
  while (end < lines.length && lines[end]!.startsWith('|')) end++
  if (end - start < 2) return false
  const incoming = fresh.split('\n').slice(2) // past the header and the alignment row
  const keys = new Set(incoming.map(key))
  const body: string[] = []
  const placed = new Set<string>()
  for (const row of lines.slice(start + 2, end)) {
    const k = key(row)
    if (!keys.has(k)) body.push(row)
    else if (!placed.has(k)) {
      placed.add(k)
      body.push(...incoming.filter((r) => key(r) === k))
    }
  }
  body.push(...incoming.filter((r) => !placed.has(key(r))))
  lines.splice(start + 2, end - start - 2, ...body)
  return true
}

const PROVENANCE = 'Re-measured later: '

/** Adds `provenance` under the first paragraph, dropping an older note about the same rows. */
function noteProvenance(lines: string[], provenance: string): void {
  const subject = (line: string): string => line.slice(line.lastIndexOf(' — '))
  for (let i = lines.length - 1; i >= 0; i--) {
    // With the blank line before it, which opened its paragraph.
    if (lines[i]!.startsWith(PROVENANCE) && subject(lines[i]!) === subject(PROVENANCE + provenance)) lines.splice(i - 1, 2)
  }
  let at = Math.max(0, lines.findIndex((l) => l.startsWith('Produced by')))
  while (at < lines.length && lines[at]!.trim() !== '') at++
  // Notes sit together after the paragraph, each on its own paragraph.
  while (lines[at + 1]?.startsWith(PROVENANCE)) at += 2
  lines.splice(at, 0, '', PROVENANCE + provenance)
}
