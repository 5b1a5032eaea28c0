// Summarises a V8 .cpuprofile (node --cpu-prof): where the samples' time went, by function (self time), by package
// or module (self time), by owner (self time charged to the innermost package or project file on the stack, so a
// socket write counts for undici, ioredis or fastify) and by package (inclusive: samples with a frame of it).
//   node bench/profile-summary.mjs <file.cpuprofile> [--top=25] [--skip=<seconds>] [--wall] [--json=out.json]
// A sample's weight is its time delta capped at twice the median delta: on a shared machine a thread preempted in a
// syscall (a loopback write wakes the receiver) would otherwise charge the whole wait to that write. --wall: uncapped.
// Hand-written because the profile format is plain JSON and the question is narrow; no flame-graph tool needed.
import { readFileSync, writeFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** node_modules/<pkg> (scoped too), node:internal, our own files by folder, or the V8 pseudo-frames. */
export function moduleOf (url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const nm = path.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const parts = path.slice(nm + '/node_modules/'.length).split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  if (path.startsWith('node:')) {
    const name = path.slice(5)
    return `node:${name.startsWith('internal/') ? name.split('/').slice(0, 2).join('/') : name}`
  }
  const rel = relative(ROOT, path)
  if (!rel.startsWith('..')) return rel.replace(/^dist\//, '').split('/').slice(0, 2).join('/')
  return path
}

/**
 * `skipUs`: leave out the first samples (start-up and warm-up), counted from the profile's start.
 * `wall`: weigh samples by their full time delta instead of capping it at twice the median sampling interval.
 */
export function summarise (profile, { skipUs = 0, wall = false } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfUs = new Map()
  // timeDeltas[i] is the time since the previous sample; it belongs to sample i.
  const sorted = profile.timeDeltas.filter((d) => d > 0).sort((a, b) => a - b)
  const cap = wall ? Infinity : 2 * (sorted[sorted.length >> 1] ?? Infinity)
  let elapsed = 0
  profile.samples.forEach((id, i) => {
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0)
    elapsed += delta
    if (elapsed >= skipUs) selfUs.set(id, (selfUs.get(id) ?? 0) + Math.min(delta, cap))
  })

  let total = 0
  let idle = 0
  const byFunction = new Map()
  const byModule = new Map()
  const inclusive = new Map()
  const byOwner = new Map()
  for (const [id, us] of selfUs) {
    const node = nodes.get(id)
    const { functionName, url, lineNumber } = node.callFrame
    total += us
    if (functionName === '(idle)') { idle += us; continue }
    const mod = moduleOf(url, functionName)
    const fnKey = `${functionName || '(anonymous)'} ${mod}${url ? `:${lineNumber + 1}` : ''}`
    byFunction.set(fnKey, (byFunction.get(fnKey) ?? 0) + us)
    byModule.set(mod, (byModule.get(mod) ?? 0) + us)
    const seen = new Set()
    let owner
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = nodes.get(cur).callFrame
      if (!f.url) continue
      const m = moduleOf(f.url, f.functionName)
      seen.add(m)
      if (owner === undefined && !m.startsWith('node:') && !m.startsWith('wasm')) owner = m
    }
    owner ??= mod.startsWith('(') ? mod : `${mod} (no package on the stack)`
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us)
    for (const m of seen) inclusive.set(m, (inclusive.get(m) ?? 0) + us)
  }
  const busy = total - idle
  const top = (map) => [...map].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: Math.round(us / 1000), shareOfBusy: us / busy }))
  return { weighting: wall ? 'wall time' : `time deltas capped at ${Math.round(cap)} µs`, totalMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), busyMs: Math.round(busy / 1000), byFunction: top(byFunction), byModule: top(byModule), byOwner: top(byOwner), inclusiveByModule: top(inclusive) }
}

function print (s, n) {
  const pct = (x) => `${(x * 100).toFixed(1).padStart(5)} %`
  const section = (title, rows) => {
    console.log(`\n${title}`)
    for (const r of rows.slice(0, n)) console.log(`  ${pct(r.shareOfBusy)}  ${String(r.ms).padStart(6)} ms  ${r.name}`)
  }
  console.log(`profile: ${s.totalMs} ms sampled (${s.weighting}), ${s.idleMs} ms idle, ${s.busyMs} ms busy (shares below are of busy time)`)
  section('self time by function', s.byFunction)
  section('self time by package / module', s.byModule)
  section('self time by owner (the innermost package or project file on the stack: node internals and native\n  code such as socket writes are charged to whoever called them)', s.byOwner)
  section('inclusive time by package / module (a sample counts once per package on its stack)', s.inclusiveByModule)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2]
  if (!file) { console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [--top=25] [--skip=<seconds>] [--wall] [--json=out.json]'); process.exit(2) }
  const top = Number(process.argv.find((a) => a.startsWith('--top='))?.slice(6) ?? 25)
  const jsonOut = process.argv.find((a) => a.startsWith('--json='))?.slice(7)
  const skip = Number(process.argv.find((a) => a.startsWith('--skip='))?.slice(7) ?? 0)
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')), { skipUs: skip * 1e6, wall: process.argv.includes('--wall') })
  if (skip) console.log(`(the first ${skip} s of the profile are left out)`)
  print(s, top)
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ file, ...s, byFunction: s.byFunction.slice(0, 200) }, null, 2) + '\n')
}
