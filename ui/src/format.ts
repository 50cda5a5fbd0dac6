/** Small formatting helpers: numbers, durations, ages. */

export function count(n: number): string {
  return n.toLocaleString('en-US')
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return '—'
  if (s < 1) return `${Math.round(s * 1000)} ms`
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`
  if (s < 5400) return `${Math.round(s / 60)} min`
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86400).toFixed(1)} d`
}

export function rate(perSecond: number): string {
  return perSecond >= 100 ? `${count(Math.round(perSecond))}/s` : `${perSecond.toFixed(1)}/s`
}

/** The first line of a message, shortened: a table shows it as text, never as markup. */
export function preview(message: string, max = 120): string {
  const line = message.split('\n', 1)[0]!
  return line.length > max ? `${line.slice(0, max)}…` : line
}
