// handleSummary for every TC: results/<tc>.json (what the runner's table and `npm run compare` read) and a short
// text summary on stdout. Hand-written because jslib.k6.io's textSummary is a network import and the lab is offline.
import { RESULTS_DIR } from './config.js'

/** Trend stats every TC reports (p(50) is `med`). */
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)']

export function summaryFor (tc) {
  return function handleSummary (data) {
    return {
      [`${RESULTS_DIR}/${tc}.json`]: JSON.stringify(data, null, 2),
      stdout: textSummary(tc, data)
    }
  }
}

const ms = (v) => (v === undefined ? '-' : `${v.toFixed(v < 10 ? 2 : 0)} ms`)
const pct = (v) => (v === undefined ? '-' : `${(v * 100).toFixed(2)} %`)

function checksOf (group, out = []) {
  for (const c of group.checks || []) out.push(c)
  for (const g of group.groups || []) checksOf(g, out)
  return out
}

export function textSummary (tc, data) {
  const m = data.metrics
  const lines = [`\n── ${tc} ──`]
  const reqs = m.http_reqs?.values
  const dur = m.http_req_duration?.values
  if (reqs) lines.push(`requests ${reqs.count} (${reqs.rate.toFixed(1)}/s)  p50 ${ms(dur?.med)}  p95 ${ms(dur?.['p(95)'])}  p99 ${ms(dur?.['p(99)'])}  max ${ms(dur?.max)}`)
  lines.push(`429 ${pct(m.tc_rate_limited?.values.rate)}  non-429 errors ${pct(m.tc_non_429_errors?.values.rate)}  unexpected errors ${pct(m.tc_unexpected_errors?.values.rate)}`)
  lines.push('checks:')
  const merged = new Map()
  for (const c of checksOf(data.root_group)) {
    const seen = merged.get(c.name) || { passes: 0, fails: 0 }
    merged.set(c.name, { passes: seen.passes + c.passes, fails: seen.fails + c.fails })
  }
  for (const [name, c] of merged) lines.push(`  ${c.fails ? '✗' : '✓'} ${name}${c.fails ? ` (${c.fails} of ${c.passes + c.fails} failed)` : ` (${c.passes})`}`)
  lines.push('thresholds:')
  for (const [metric, def] of Object.entries(m)) {
    for (const [expr, result] of Object.entries(def.thresholds || {})) {
      const key = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)/.exec(expr)?.[1]
      const value = def.values[key]
      lines.push(`  ${result.ok ? '✓' : '✗'} ${metric} ${expr}   (${key}=${value === undefined ? '-' : Number.isInteger(value) ? value : value.toFixed(3)})`)
    }
  }
  return lines.join('\n') + '\n\n'
}
