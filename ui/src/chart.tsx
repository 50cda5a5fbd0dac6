import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

export interface Series {
  label: string
  stroke: string
}

/**
 * A live line chart (uPlot): `data` is [times in seconds, ...one array per series]. Made once,
 * then only given new data; resized with its container.
 */
export function Chart({ title, series, data, unit }: { title: string; series: Series[]; data: number[][]; unit: string }) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  useEffect(() => {
    const el = box.current!
    const options: uPlot.Options = {
      title,
      width: el.clientWidth || 600,
      height: 200,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, value: (_u: uPlot, v: number | null) => (v === null ? '—' : `${v.toFixed(1)} ${unit}`) }))],
      axes: [{}, { size: 60 }],
      scales: { y: { range: (_u, min, max) => [0, Math.max(1, max, min)] } },
    }
    plot.current = new uPlot(options, data as uPlot.AlignedData, el)
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height: 200 }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      plot.current?.destroy()
      plot.current = null
    }
  }, [])
  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData)
  }, [data])
  return <div class="chart" ref={box} />
}
