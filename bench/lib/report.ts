/** One measured figure. `ratio` compares it with a reference measured in the same run. */
export interface Row {
  workload: string
  subject: string
  value: number
  unit: string
  ratio?: { against: string; value: number }
  note?: string
}

/** A target from the issue, checked against this run's figures. */
export interface Check {
  target: string
  measured: string
  met: boolean
}

export interface Section {
  rows: Row[]
  checks: Check[]
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function table(rows: Row[]): string {
  const lines = ['| workload | subject | result | ratio |', '|---|---|---:|---|']
  for (const r of rows) {
    const digits = Math.abs(r.value) < 10 ? 2 : Math.abs(r.value) < 100 ? 1 : 0
    const ratio = r.ratio ? `${r.ratio.value.toFixed(2)}× ${r.ratio.against}` : ''
    lines.push(`| ${r.workload} | ${r.subject}${r.note ? ` (${r.note})` : ''} | ${fmt(r.value, digits)} ${r.unit} | ${ratio} |`)
  }
  return lines.join('\n')
}

export function checks(list: Check[]): string {
  const lines = ['| target | measured | met |', '|---|---|---|']
  for (const c of list) lines.push(`| ${c.target} | ${c.measured} | ${c.met ? 'yes' : '**no**'} |`)
  return lines.join('\n')
}
