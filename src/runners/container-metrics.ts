/**
 * The docker job dispatcher's one metric, kept as it counts it: `jobs_total{namespace,action,status}`
 * for the container events create, start and die, with the exit status on die (and "" on the
 * others). Each container lane keeps its own samples; `GET /` shows them under the lane's runner
 * counters, and `renderJobsTotal` writes them in the seed's OpenMetrics text, samples of lanes
 * sharing a namespace added together, so its dashboards keep working.
 */

export type ContainerAction = 'create' | 'start' | 'die'

export interface Sample {
  labels: { namespace: string; action: ContainerAction; status: string }
  value: number
}

export class JobsTotal {
  private readonly samples = new Map<string, Sample>()

  constructor(private readonly namespace: string) {}

  count(action: ContainerAction, status = ''): void {
    const key = `${action}\0${status}`
    const sample = this.samples.get(key)
    if (sample !== undefined) sample.value++
    else this.samples.set(key, { labels: { namespace: this.namespace, action, status }, value: 1 })
  }

  /** Copies, in the order each first happened. */
  list(): Sample[] {
    return [...this.samples.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }))
  }
}

/** OpenMetrics label values escape backslash, double quote and newline. */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** The seed's exposition: a HELP and TYPE for the `jobs` counter family, one line per sample, `# EOF`. */
export function renderJobsTotal(samples: Sample[]): string {
  const summed = new Map<string, Sample>()
  for (const sample of samples) {
    const { namespace, action, status } = sample.labels
    const key = JSON.stringify([namespace, action, status])
    const seen = summed.get(key)
    if (seen !== undefined) seen.value += sample.value
    else summed.set(key, { labels: { namespace, action, status }, value: sample.value })
  }
  const lines = ['# HELP jobs Number of jobs.', '# TYPE jobs counter']
  for (const { labels, value } of summed.values()) {
    lines.push(`jobs_total{namespace="${labelValue(labels.namespace)}",action="${labels.action}",status="${labelValue(labels.status)}"} ${value}`)
  }
  lines.push('# EOF')
  return `${lines.join('\n')}\n`
}
