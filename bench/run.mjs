// `npm run bench`: the side-by-side benchmark. One invocation starts the user stub, nginx (bench/nginx.conf) and the
// gateway in Redis and embedded mode, then measures them ALTERNATING, round by round, so machine drift hits all alike:
//   - throughput: wrk, 50 keep-alive connections, GET /users/:id with a Bearer token per request, over 10 000
//     distinct clients and over one hot client;
//   - latency: k6 constant-arrival-rate (an open model: p50/p99 are not coordinated-omission artefacts);
//   - RSS (VmRSS) of each target after each round.
// It prints one table (medians over the rounds, ratios to nginx and to the direct stub) and writes results/bench.json.
//
//   node bench/run.mjs [--short] [--variant=<label>:<redis|embedded>:<path to a built server.js>]...
//   BENCH_PROFILE=ci is --short (CI: about 2 minutes, no timing assertions). Other knobs: see PROFILES and env below.
//   BENCH_GATEWAY_NODE_OPTIONS='--max-old-space-size=1024 …' starts the gateways with those Node flags (a deployment
//   setting under test; the table's notes say so). Unset: the gateways run as `npm run start:gateway` runs them.
// Loopback only, free ports, bounded by a watchdog; every process it started is stopped, also on failure or Ctrl-C.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem, hostname } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startGateway, startNodeProcess, startRedis, startStubs, waitFor } from '../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, sweepClients, writeTokensFile } from './lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = join(BENCH, '..')

const PROFILES = {
  // warmupS: unrecorded wrk run per target before round 1 (JIT, pools, caches).
  full: { rounds: 3, warmupS: 5, wrkS: 10, rate: 3000, rateS: 15 },
  ci: { rounds: 2, warmupS: 2, wrkS: 3, rate: 1000, rateS: 3 }
}

const args = process.argv.slice(2)
const profileName = args.includes('--short') || process.env.BENCH_PROFILE === 'ci' ? 'ci' : 'full'
const envInt = (name, fallback) => process.env[name] ? Number(process.env[name]) : fallback
const settings = {
  profile: profileName,
  rounds: envInt('BENCH_ROUNDS', PROFILES[profileName].rounds),
  warmupS: envInt('BENCH_WARMUP_SECONDS', PROFILES[profileName].warmupS),
  wrkS: envInt('BENCH_WRK_SECONDS', PROFILES[profileName].wrkS),
  rate: envInt('BENCH_RATE', PROFILES[profileName].rate),
  rateS: envInt('BENCH_RATE_SECONDS', PROFILES[profileName].rateS),
  connections: envInt('BENCH_CONNECTIONS', 50),
  wrkThreads: envInt('BENCH_WRK_THREADS', 1),
  clients: envInt('BENCH_CLIENTS', 10_000),
  // High enough that no throughput run is refused: the runs measure the limiter's path, not 429s.
  rateLimitMax: envInt('BENCH_RATE_LIMIT_MAX', 1_000_000_000),
  rateLimitWindowMs: 60_000,
  gatewayNodeOptions: process.env.BENCH_GATEWAY_NODE_OPTIONS ?? ''
}
// --variant=label:mode:/abs/dist/src/server.js adds a gateway built elsewhere (a patched copy) to the same run.
const variants = args.filter((a) => a.startsWith('--variant=')).map((a) => {
  const [label, mode, ...path] = a.slice('--variant='.length).split(':')
  if (!label || !['redis', 'embedded'].includes(mode) || path.length === 0) throw new Error(`bad ${a}: want --variant=<label>:<redis|embedded>:<server.js>`)
  return { label, mode, script: resolve(path.join(':')) }
})
// BENCH_TARGETS=direct,nginx,gateway-redis,gateway-embedded,variant-<label>: run only these (an A/B of variants).
const onlyTargets = process.env.BENCH_TARGETS?.split(',').filter(Boolean)
// BENCH_BASELINE=<target key> adds a column of per-round ratios to that target (e.g. variant-base).
const baseline = process.env.BENCH_BASELINE

const K6 = [process.env.K6_BIN, join(ROOT, '.cache', 'bin', 'k6')].find((p) => p && existsSync(p)) ?? 'k6'
const log = (...m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...m)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------- process bookkeeping: everything started is stopped, in reverse order, exactly once ----------
const cleanups = []
const running = new Set()
let tornDown = false
async function teardown () {
  if (tornDown) return
  tornDown = true
  for (const child of running) child.kill('SIGKILL')
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => log('cleanup failed:', err.message))
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { log(`${signal}: stopping everything`); teardown().finally(() => process.exit(130)) })
}

/** Runs a command to completion (killed after timeoutMs); resolves with its output. */
function run (cmd, cmdArgs, { timeoutMs, env = {} }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} ran over ${timeoutMs} ms`)) }, timeoutMs)
    child.once('error', (err) => { clearTimeout(timer); running.delete(child); reject(err) })
    child.once('exit', (code) => {
      clearTimeout(timer)
      running.delete(child)
      if (code !== 0) reject(new Error(`${cmd} exited ${code}: ${stderr.trim() || stdout.slice(-1000)}`))
      else resolve({ stdout, stderr })
    })
  })
}

// ---------- measurements ----------
function rssMb (pids) {
  let kb = 0
  for (const pid of pids) {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    if (match) kb += Number(match[1])
  }
  return Math.round(kb / 102.4) / 10
}

function childPids (parent) {
  const pids = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) pids.push(Number(entry))
    } catch { /* gone */ }
  }
  return pids
}

// CPU time (user + system) the target's processes used, in µs: per request it is a cost that stays comparable when
// other work shares the CPUs, which req/s alone does not.
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100 } catch { return 100 } })()
function cpuUs (pids) {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of stat(5))
    } catch { /* gone */ }
  }
  return ticks * 1e6 / CLK_TCK
}

async function wrk (target, mode, seconds, tokensFile) {
  const pids = target.pids()
  const cpuBefore = cpuUs(pids)
  const { stdout } = await run('wrk', ['-t', String(settings.wrkThreads), '-c', String(settings.connections), '-d', `${seconds}s`,
    '--timeout', '5s', '-s', join(BENCH, 'wrk-clients.lua'), target.url, '--', tokensFile, mode], { timeoutMs: (seconds + 30) * 1000 })
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH '))
  if (!line) throw new Error(`wrk printed no BENCH line for ${target.key}: ${stdout.slice(-500)}`)
  const r = JSON.parse(line.slice(6))
  const cpuUsPerRequest = r.requests ? (cpuUs(pids) - cpuBefore) / r.requests : NaN
  const answered = r.ok + r.limited + r.other
  return {
    rps: Math.round(r.requests / (r.durationUs / 1e6)),
    requests: r.requests,
    cpuUsPerRequest: Math.round(cpuUsPerRequest * 10) / 10,
    limitedShare: answered ? r.limited / answered : 0,
    otherShare: answered ? r.other / answered : 0,
    socketErrors: r.socketErrors,
    timeouts: r.timeouts,
    // Closed-loop latencies, for reference only: the fixed-rate run gives the latencies to quote.
    closedLoopP50Ms: r.p50Us / 1000,
    closedLoopP99Ms: r.p99Us / 1000
  }
}

async function fixedRate (target, tmp, tokensFile, round) {
  const summaryPath = join(tmp, `k6-${target.key}-${round}.json`)
  await run(K6, ['run', '--quiet', '--no-color', '--no-usage-report', '--no-thresholds',
    '-e', `BASE_URL=${target.url}`, '-e', `RATE=${settings.rate}`, '-e', `DURATION=${settings.rateS}s`,
    '-e', `TOKENS_FILE=${tokensFile}`, '-e', `SUMMARY_PATH=${summaryPath}`, join(BENCH, 'fixed-rate.js')],
  { timeoutMs: (settings.rateS + 60) * 1000, env: { K6_NO_USAGE_REPORT: 'true' } })
  return JSON.parse(readFileSync(summaryPath, 'utf8'))
}

// ---------- the targets ----------
async function startNginx (tmp, upstreamPort) {
  const prefix = join(tmp, 'nginx')
  mkdirSync(prefix, { recursive: true })
  const port = await freePort()
  const conf = readFileSync(join(BENCH, 'nginx.conf'), 'utf8')
    .replaceAll('{{PREFIX}}', prefix).replaceAll('{{PORT}}', String(port)).replaceAll('{{UPSTREAM_PORT}}', String(upstreamPort))
    .replaceAll('{{RATE}}', String(Math.ceil(settings.rateLimitMax / (settings.rateLimitWindowMs / 1000)))).replaceAll('{{BURST}}', '100000')
  writeFileSync(join(prefix, 'nginx.conf'), conf)
  const child = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000) })
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await new Promise((resolve) => child.once('exit', resolve)) } })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    return (await fetch(`${url}/health`)).ok
  }, { what: `nginx on port ${port}`, timeoutMs: 10_000 })
  return { url, pids: () => [child.pid, ...childPids(child.pid)] }
}

function machine (loadAvgAtStart) {
  // nginx -v writes to stderr and wrk -v exits 1: take the first line of whichever stream has one.
  const version = (cmd, a) => {
    const r = spawnSync(cmd, a, { encoding: 'utf8' })
    return (r.stdout || r.stderr || r.error?.message || '').trim().split('\n')[0] || undefined
  }
  return {
    host: hostname(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGb: Math.round(totalmem() / 2 ** 30),
    loadAvgAtStart,
    node: process.version,
    nginx: version('nginx', ['-v']),
    wrk: version('wrk', ['-v']),
    k6: version(K6, ['version'])
  }
}

// ---------- the table ----------
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (x, digits = 2) => Number.isFinite(x) ? x.toFixed(digits) : '—'
const pct = (x) => Number.isFinite(x) ? `${(x * 100).toFixed(2)} %` : '—'

function summarise (targets, rounds) {
  const byRound = (key, pick) => rounds.map((r) => pick(r[key])).filter((x) => x !== undefined)
  const ratio = (key, ref, field) => median(rounds.map((r) => r[key] && r[ref] ? r[key][field].rps / r[ref][field].rps : NaN))
  return targets.map(({ key, label }) => {
    const wrkRuns = rounds.flatMap((r) => r[key] ? [r[key].many, r[key].hot] : [])
    const total = wrkRuns.reduce((n, w) => n + w.requests, 0)
    return {
      key,
      label,
      rpsManyClients: median(byRound(key, (t) => t?.many.rps)),
      rpsHotClient: median(byRound(key, (t) => t?.hot.rps)),
      cpuUsPerRequest: median(byRound(key, (t) => t?.many.cpuUsPerRequest)),
      cpuUsPerRequestHot: median(byRound(key, (t) => t?.hot.cpuUsPerRequest)),
      limitedShare: total ? wrkRuns.reduce((n, w) => n + w.limitedShare * w.requests, 0) / total : NaN,
      otherNon2xxShare: total ? wrkRuns.reduce((n, w) => n + w.otherShare * w.requests, 0) / total : NaN,
      socketErrors: wrkRuns.reduce((n, w) => n + w.socketErrors + w.timeouts, 0),
      fixedRateP50Ms: median(byRound(key, (t) => t?.fixed?.p50Ms)),
      fixedRateP99Ms: median(byRound(key, (t) => t?.fixed?.p99Ms)),
      fixedRateDropped: byRound(key, (t) => t?.fixed?.droppedIterations).reduce((a, b) => a + b, 0),
      fixedRateFailedShare: median(byRound(key, (t) => t?.fixed?.failedRate)),
      addedP99MsVsDirect: median(rounds.map((r) => r[key]?.fixed && r.direct?.fixed ? r[key].fixed.p99Ms - r.direct.fixed.p99Ms : NaN)),
      rssMbPerRound: byRound(key, (t) => t?.rssMb),
      ratioToNginx: { manyClients: ratio(key, 'nginx', 'many'), hotClient: ratio(key, 'nginx', 'hot') },
      ratioToDirect: { manyClients: ratio(key, 'direct', 'many'), hotClient: ratio(key, 'direct', 'hot') },
      ...(baseline ? { ratioToBaseline: { manyClients: ratio(key, baseline, 'many'), hotClient: ratio(key, baseline, 'hot') } } : {})
    }
  })
}

function renderTable (rows) {
  const header = ['target', `req/s ${settings.clients} clients`, 'req/s 1 hot client', 'CPU µs/req', '429 share', 'other non-2xx',
    `p50 ms @${settings.rate}/s`, `p99 ms @${settings.rate}/s`, 'p99 added vs direct', 'RSS MB per round', '× nginx', '× direct']
  const lines = rows.map((r) => [r.label, fmt(r.rpsManyClients, 0), fmt(r.rpsHotClient, 0), `${fmt(r.cpuUsPerRequest, 0)} (hot ${fmt(r.cpuUsPerRequestHot, 0)})`, pct(r.limitedShare), pct(r.otherNon2xxShare),
    fmt(r.fixedRateP50Ms) + (r.fixedRateDropped ? ` (${r.fixedRateDropped} dropped)` : ''), fmt(r.fixedRateP99Ms),
    r.key === 'direct' ? '—' : fmt(r.addedP99MsVsDirect), r.rssMbPerRound.map((x) => fmt(x, 0)).join(' / '),
    `${fmt(r.ratioToNginx.manyClients)} (hot ${fmt(r.ratioToNginx.hotClient)})`, `${fmt(r.ratioToDirect.manyClients)} (hot ${fmt(r.ratioToDirect.hotClient)})`])
  if (baseline) {
    header.push(`× ${baseline}`)
    rows.forEach((r, i) => lines[i].push(`${fmt(r.ratioToBaseline.manyClients, 3)} (hot ${fmt(r.ratioToBaseline.hotClient, 3)})`))
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const row = (cells) => `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ')} |`
  return [row(header), `|${widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|')}|`, ...lines.map(row)].join('\n')
}

// ---------- the issue's targets, read off the rows (printed, never asserted: CI only needs the run to complete) ----------
function targetChecks (rows) {
  const row = (key) => rows.find((r) => r.key === key)
  const goals = []
  const redis = row('gateway-redis')
  if (redis && row('nginx')) {
    const r = redis.ratioToNginx.manyClients
    goals.push({ goal: 'throughput', met: r >= 0.40, text: `gateway (Redis mode) req/s ≥ 0.40 × nginx: ${fmt(r)} × with 10 000 clients (hot client ${fmt(redis.ratioToNginx.hotClient)} ×)` })
  }
  if (redis && row('direct') && settings.rateS > 0) {
    const added = redis.addedP99MsVsDirect
    goals.push({ goal: 'latency', met: added <= 1.5, text: `gateway (Redis mode) adds ≤ 1.5 ms to the direct stub's p99 at ${settings.rate}/s: +${fmt(added)} ms (p99 ${fmt(redis.fixedRateP99Ms)} vs ${fmt(row('direct').fixedRateP99Ms)} ms)` })
  }
  for (const key of ['gateway-redis', 'gateway-embedded']) {
    const mb = row(key)?.rssMbPerRound
    if (!mb?.length) continue
    // Each round is one run: every round ≤ 150 MB, and no growth = the last round not above the one before by more
    // than 5 % (a leak climbs every round; a heap that has found its size moves up and down).
    const last = mb[mb.length - 1]
    const rise = mb.length > 1 ? last - mb[mb.length - 2] : 0
    goals.push({ goal: `rss ${key}`, met: Math.max(...mb) <= 150 && rise <= 0.05 * last, text: `${key} RSS after each run ≤ 150 MB and not growing: ${mb.map((x) => fmt(x, 0)).join(' / ')} MB over the rounds` })
  }
  return goals
}

// ---------- main ----------
async function main () {
  const startedAt = new Date()
  const loadAvgAtStart = loadavg().map((l) => Math.round(l * 100) / 100)
  const boundMs = (settings.rounds * (2 * settings.wrkS + settings.rateS + 15) * (4 + variants.length) + 180) * 1000
  const watchdog = setTimeout(() => { log(`over the ${Math.round(boundMs / 1000)} s bound: stopping`); teardown().finally(() => process.exit(1)) }, boundMs)
  watchdog.unref()

  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-'))
  cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }))
  log(`profile ${settings.profile}: ${settings.rounds} rounds × (wrk ${settings.wrkS}s × 2 + k6 ${settings.rateS}s @${settings.rate}/s) per target; tmp ${tmp}`)

  const tokensFile = join(tmp, 'tokens.txt')
  await writeTokensFile(tokensFile, settings.clients)

  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const stubs = await startStubs({ JWT_SECRET })
  cleanups.push(() => stubs.stop())

  const gatewayEnv = (key, mode) => ({
    ...stubs.gatewayEnv,
    JWT_SECRET,
    JWT_TTL_SECONDS,
    RATE_LIMIT_MAX: String(settings.rateLimitMax),
    RATE_LIMIT_WINDOW_MS: String(settings.rateLimitWindowMs),
    LOG_LEVEL: 'warn',
    AUDIT_LOG_PATH: join(tmp, `audit-${key}.log`),
    ...(settings.gatewayNodeOptions ? { NODE_OPTIONS: settings.gatewayNodeOptions } : {}),
    ...(mode === 'redis' ? { REDIS_URL: redis.url } : {})
  })
  const gatewayTarget = async (key, label, mode, script) => {
    const env = gatewayEnv(key, mode)
    const gw = script
      ? await startNodeProcess('gateway', script, { ...env, PORT: String(await freePort()) }).then((g) => ({ ...g, stop: async () => { if (g.process.exitCode === null) { g.process.kill('SIGTERM'); await new Promise((resolve) => g.process.once('exit', resolve)) } } }))
      : await startGateway(env)
    cleanups.push(() => gw.stop())
    return { key, label, url: gw.url, pids: () => [gw.process.pid], alive: () => gw.process.exitCode === null && gw.process.signalCode === null }
  }

  const starters = [
    ['direct', async () => ({ key: 'direct', label: 'user stub direct', url: stubs.user.url, pids: () => [stubs.user.process.pid] })],
    ['nginx', async () => ({ key: 'nginx', label: 'nginx (limit_req + proxy_pass)', ...await startNginx(tmp, stubs.user.port) })],
    ['gateway-redis', () => gatewayTarget('gateway-redis', 'gateway, Redis mode', 'redis')],
    ['gateway-embedded', () => gatewayTarget('gateway-embedded', 'gateway, embedded mode', 'embedded')],
    ...variants.map((v) => [`variant-${v.label}`, () => gatewayTarget(`variant-${v.label}`, `variant ${v.label} (${v.mode})`, v.mode, v.script)])
  ]
  const targets = []
  for (const [key, start] of starters) if (!onlyTargets || onlyTargets.includes(key)) targets.push(await start())

  for (const t of targets) {
    // Every client once (each token's first verification is the uncached one), then the JIT warm-up.
    log(`warm-up ${t.key}: ${settings.clients} clients once, then ${settings.warmupS}s`)
    await sweepClients(t.url, tokensFile)
    await wrk(t, 'many', settings.warmupS, tokensFile)
  }

  const rounds = []
  for (let round = 0; round < settings.rounds; round++) {
    // Rotate the order each round so no target always runs first (or right after the heaviest one).
    const order = targets.map((_, i) => targets[(i + round) % targets.length])
    const results = Object.fromEntries(order.map((t) => [t.key, {}]))
    for (const phase of settings.rateS > 0 ? ['many', 'hot', 'fixed'] : ['many', 'hot']) {
      for (const t of order) {
        if (t.alive && !t.alive()) throw new Error(`${t.key} died`)
        results[t.key][phase] = phase === 'fixed' ? await fixedRate(t, tmp, tokensFile, round) : await wrk(t, phase, settings.wrkS, tokensFile)
        const r = results[t.key][phase]
        log(`round ${round + 1} ${phase.padEnd(5)} ${t.key.padEnd(18)} ${phase === 'fixed' ? `p50 ${fmt(r.p50Ms)} ms, p99 ${fmt(r.p99Ms)} ms, dropped ${r.droppedIterations}` : `${r.rps} req/s, ${r.cpuUsPerRequest} CPU µs/req, 429 ${pct(r.limitedShare)}`}`)
        await sleep(300)
      }
    }
    for (const t of targets) results[t.key].rssMb = rssMb(t.pids())
    results.redisRssMb = rssMb([redis.process.pid])
    log(`round ${round + 1} RSS MB: ${targets.map((t) => `${t.key} ${results[t.key].rssMb}`).join(', ')}, redis ${results.redisRssMb}`)
    rounds.push(results)
  }

  const rows = summarise(targets, rounds)
  const table = renderTable(rows)
  const notes = [
    `req/s: wrk -t${settings.wrkThreads} -c${settings.connections} -d${settings.wrkS}s, GET /users/:id with a Bearer token; median of ${settings.rounds} alternating rounds.`,
    `RATE_LIMIT_MAX=${settings.rateLimitMax} per ${settings.rateLimitWindowMs / 1000}s (nginx: the same rate) so the runs measure the limiter's path, not refusals; "429 share" shows none were refused.`,
    `p50/p99: k6 constant-arrival-rate ${settings.rate}/s for ${settings.rateS}s (open model), median of the rounds; "added" = target p99 − direct p99 in the same round.`,
    '× nginx / × direct: median over rounds of the per-round ratio (10 000 clients; the hot client in brackets).',
    'CPU µs/req: user+system CPU of the target\'s own processes per request during the wrk run (the gateways exclude the stub and Redis); it stays comparable when other work shares the CPUs, so 1e6 / CPU µs/req is the one-core ceiling.',
    `RSS: VmRSS after each round (nginx: master + worker; the gateways alone; Redis per round in the JSON). Load generator and targets share ${cpus().length} CPUs.`,
    ...(settings.gatewayNodeOptions ? [`The gateways ran with NODE_OPTIONS="${settings.gatewayNodeOptions}" (BENCH_GATEWAY_NODE_OPTIONS).`] : [])
  ]
  const goals = targetChecks(rows)
  const report = { date: startedAt.toISOString(), command: `node bench/run.mjs ${args.join(' ')}`.trim(), machine: machine(loadAvgAtStart), loadAvgAtEnd: loadavg().map((l) => Math.round(l * 100) / 100), settings, notes, table, goals, targets: rows, rounds }
  mkdirSync(join(ROOT, 'results'), { recursive: true })
  writeFileSync(join(ROOT, 'results', 'bench.json'), JSON.stringify(report, null, 2) + '\n')
  const m = report.machine
  console.log(`\nBenchmark (${settings.profile} profile, ${startedAt.toISOString()}, ${m.cpus} CPUs ${m.cpuModel}, ${m.memGb} GB; load avg at start ${m.loadAvgAtStart.join(' ')}, at end ${report.loadAvgAtEnd.join(' ')})`)
  console.log(`node ${m.node}; ${m.nginx}; ${m.wrk}; ${m.k6}\n`)
  console.log(table)
  console.log('\n' + notes.map((n) => `- ${n}`).join('\n'))
  if (goals.length) console.log(`\nIssue 7 targets (${settings.profile === 'ci' ? 'informational only in the short profile: short runs, 1 000/s' : 'this run'}; never an exit code):\n${goals.map((g) => `- ${g.met ? 'met    ' : 'NOT met'}  ${g.text}`).join('\n')}`)
  console.log('\nwritten: results/bench.json')
}

try {
  await main()
} catch (err) {
  log('FAILED:', err.stack ?? err.message)
  process.exitCode = 1
} finally {
  await teardown()
}
