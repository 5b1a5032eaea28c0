#!/usr/bin/env node
// npm run compare -- <dirA> <dirB> [--tolerance 10] [--error-tolerance 0.5] [--min-ms 1]
//
// Compares two folders of k6 results (the <tc>.json that every TC's handleSummary writes; `npm run load` gives each
// run its own folder, results/load/<start>-<tc|all>/) and flags regressions of B against A, TC by TC:
//   p50, p95, p99  B slower than A by more than --tolerance % (and by more than --min-ms, so sub-ms noise is ignored);
//                  p50 is the steadiest of them and the first to show a per-request cost the tail hides
//   error %        B's share of errors other than 429 higher by more than --error-tolerance percentage points
//   throughput     B's req/s lower than A's by more than --tolerance %
// Exits 1 when anything regressed, 2 on bad usage or when the folders hold runs of different profiles.
// Latency on a shared machine moves with what else runs there: two runs of the same code on a busy 2-core box
// differed by up to ×2 in p95, so compare runs from a quiet machine, or widen --tolerance and --min-ms.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

function usage (message) {
  console.error(`${message}\nusage: npm run compare -- <dirA> <dirB> [--tolerance 10] [--error-tolerance 0.5] [--min-ms 1]`)
  process.exit(2)
}

function parseArgs (argv) {
  const dirs = []
  const opts = { tolerance: 10, errorTolerance: 0.5, minMs: 1 }
  const flags = { '--tolerance': 'tolerance', '--error-tolerance': 'errorTolerance', '--min-ms': 'minMs' }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=')
    if (flags[flag]) {
      const value = Number(inline ?? argv[++i])
      if (!Number.isFinite(value) || value < 0) usage(`${flag} needs a number ≥ 0`)
      opts[flags[flag]] = value
    } else if (argv[i].startsWith('-')) usage(`unknown option ${argv[i]}`)
    else dirs.push(argv[i])
  }
  if (dirs.length !== 2) usage('give two result folders')
  for (const dir of dirs) if (!existsSync(dir)) usage(`no such folder: ${dir}`)
  return { dirs, opts }
}

/** The figures compared, from a handleSummary JSON. */
function figures (file) {
  const m = JSON.parse(readFileSync(file, 'utf8')).metrics
  const d = m.http_req_duration?.values ?? {}
  return {
    p50: d.med,
    p95: d['p(95)'],
    p99: d['p(99)'],
    errors: (m.tc_non_429_errors ?? m.http_req_failed)?.values.rate,
    rps: m.http_reqs?.values.rate
  }
}

/** What `npm run load` wrote about the run (profile, start, load average), when the folder has its load-run.json. */
function runInfo (dir) {
  try {
    const { started, profile, loadAvg } = JSON.parse(readFileSync(join(dir, 'load-run.json'), 'utf8'))
    return { profile, text: `PROFILE=${profile}, started ${started}${loadAvg ? `, load average ${loadAvg}` : ''}` }
  } catch {
    return { text: 'no load-run.json' }
  }
}

const summaries = (dir) => new Map(readdirSync(dir).filter((f) => /^tc-[\w-]+\.json$/.test(f)).map((f) => [f.replace(/\.json$/, ''), join(dir, f)]))

function compare (a, b, { tolerance, errorTolerance, minMs }) {
  const rows = []
  const slower = (name, x, y) => {
    const regressed = y > x * (1 + tolerance / 100) && y - x > minMs
    rows.push([name, `${x.toFixed(1)} ms`, `${y.toFixed(1)} ms`, change(x, y), regressed])
  }
  if (a.p50 !== undefined && b.p50 !== undefined) slower('p50', a.p50, b.p50)
  if (a.p95 !== undefined && b.p95 !== undefined) slower('p95', a.p95, b.p95)
  if (a.p99 !== undefined && b.p99 !== undefined) slower('p99', a.p99, b.p99)
  if (a.errors !== undefined && b.errors !== undefined) {
    const pa = a.errors * 100
    const pb = b.errors * 100
    rows.push(['error %', `${pa.toFixed(2)} %`, `${pb.toFixed(2)} %`, `${pb - pa >= 0 ? '+' : ''}${(pb - pa).toFixed(2)} pp`, pb - pa > errorTolerance])
  }
  if (a.rps !== undefined && b.rps !== undefined) {
    rows.push(['throughput', `${a.rps.toFixed(1)}/s`, `${b.rps.toFixed(1)}/s`, change(a.rps, b.rps), b.rps < a.rps * (1 - tolerance / 100)])
  }
  return rows
}

const change = (x, y) => (x === 0 ? (y === 0 ? '0 %' : 'new') : `${y >= x ? '+' : ''}${(((y - x) / x) * 100).toFixed(1)} %`)

function table (rows) {
  const head = ['TC', 'metric', 'A', 'B', 'change', 'verdict']
  const cells = [head, ...rows]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)))
  const line = (r) => r.map((c, i) => (i < 2 || i === 5 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

const { dirs: [dirA, dirB], opts } = parseArgs(process.argv.slice(2))
const [infoA, infoB] = [runInfo(dirA), runInfo(dirB)]
if (infoA.profile && infoB.profile && infoA.profile !== infoB.profile) {
  usage(`A ran PROFILE=${infoA.profile} and B PROFILE=${infoB.profile}: their figures are not comparable`)
}
const a = summaries(dirA)
const b = summaries(dirB)
const rows = []
let regressions = 0
for (const tc of [...new Set([...a.keys(), ...b.keys()])].sort()) {
  if (!a.has(tc) || !b.has(tc)) {
    rows.push([tc, '-', a.has(tc) ? 'present' : '-', b.has(tc) ? 'present' : '-', '', `only in ${a.has(tc) ? 'A' : 'B'}`])
    continue
  }
  for (const [metric, va, vb, delta, regressed] of compare(figures(a.get(tc)), figures(b.get(tc)), opts)) {
    if (regressed) regressions++
    rows.push([tc, metric, va, vb, delta, regressed ? 'REGRESSION' : 'ok'])
  }
}
if (rows.length === 0) usage(`no tc-*.json in ${dirA} or ${dirB}`)
console.log(`A = ${dirA} (${infoA.text})\nB = ${dirB} (${infoB.text})`)
console.log(`tolerance ${opts.tolerance} % (latency, throughput), ${opts.errorTolerance} pp (errors), min ${opts.minMs} ms\n`)
console.log(table(rows))
console.log(`\n${regressions ? `${regressions} regression(s)` : 'no regressions'}`)
process.exit(regressions ? 1 : 0)
