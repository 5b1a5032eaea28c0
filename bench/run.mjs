// `npm run bench`: the gateway side by side with nginx configured like it (bench/nginx.conf: limit_req, proxy_pass
// keep-alive, access log on, the same worker count), in alternating rounds so machine drift hits both alike:
//   - throughput: wrk -t1 -c50, GET /users/:id with a Bearer token of one of 10 000 clients per request;
//   - flood: the same with one client far over its limit (RATE_LIMIT_MAX per minute): 429s per second;
//   - capacity: the highest constant arrival rate (vegeta, stepped) whose p99 stays ≤ 10 ms with no errors;
//   - RSS per process and CPU µs per request per process (from /proc) during the throughput run.
// The gateway runs exactly as `npm start` runs it (node --max-old-space-size=1024, default LOG_LEVEL and logging,
// stdout to a file) in Redis mode, with 1 and N workers. Prints a table of medians and ratios to nginx, writes
// results/bench.json and docs/BENCH.md.
//   node bench/run.mjs [--short]     BENCH_WORKERS=N (default 2); --short: CI-sized, figures printed, never asserted.
// Loopback only, free ports, bounded by a watchdog; every process it started is stopped, also on failure or Ctrl-C.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GATEWAY_NODE_ARGS, freePort, startRedis, startStubs, waitFor } from '../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, VEGETA, sweepClients, vegetaTargets, writeTokensFile } from './lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = join(BENCH, '..')

const PROFILES = {
  full: { rounds: 3, warmupS: 5, wrkS: 10, floodS: 5, stepS: 5, rates: [250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000] },
  ci: { rounds: 1, warmupS: 2, wrkS: 3, floodS: 2, stepS: 2, rates: [250, 500, 1000, 2000, 4000] }
}
const args = process.argv.slice(2)
const profileName = args.includes('--short') || process.env.BENCH_PROFILE === 'ci' ? 'ci' : 'full'
const envInt = (name, fallback) => process.env[name] ? Number(process.env[name]) : fallback
const settings = {
  profile: profileName,
  ...PROFILES[profileName],
  rounds: envInt('BENCH_ROUNDS', PROFILES[profileName].rounds),
  workers: envInt('BENCH_WORKERS', 2),
  connections: 50,
  clients: 10_000,
  // The gateway's defaults (CONTRACT.md): 1 000 per client per minute. The throughput run stays far below it per
  // client; the flood's one client is far over it.
  rateLimitMax: 1000,
  p99TargetMs: 10
}
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
function run (cmd, cmdArgs, { timeoutMs, input }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    running.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
    if (input !== undefined) child.stdin.end(input)
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

async function stopChild (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
}

// ---------- /proc ----------
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100 } catch { return 100 } })()
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
function cpuUs (pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLK_TCK // utime + stime
  } catch { return NaN }
}
function rssMb (pid) {
  try { return Math.round(Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 102.4) / 10 } catch { return NaN }
}

// ---------- load generators ----------
async function wrk (target, mode, seconds, tokensFile) {
  const pids = target.pids()
  const before = pids.map(cpuUs)
  const { stdout } = await run('wrk', ['-t1', '-c', String(settings.connections), '-d', `${seconds}s`, '--timeout', '5s',
    '-s', join(BENCH, 'wrk-clients.lua'), target.url, '--', tokensFile, mode], { timeoutMs: (seconds + 30) * 1000 })
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH '))
  if (!line) throw new Error(`wrk printed no BENCH line for ${target.key}: ${stdout.slice(-500)}`)
  const r = JSON.parse(line.slice(6))
  const secondsRun = r.durationUs / 1e6
  const perProcess = pids.map((pid, i) => ({ pid, role: target.roles(pid), cpuUsPerRequest: r.requests ? Math.round((cpuUs(pid) - before[i]) / r.requests * 10) / 10 : NaN, rssMb: rssMb(pid) }))
  return {
    rps: Math.round(r.requests / secondsRun),
    okPerS: Math.round(r.ok / secondsRun),
    limitedPerS: Math.round(r.limited / secondsRun),
    otherShare: r.requests ? r.other / r.requests : 0,
    socketErrors: r.socketErrors + r.timeouts,
    cpuUsPerRequest: Math.round(perProcess.reduce((a, p) => a + p.cpuUsPerRequest, 0) * 10) / 10,
    perProcess
  }
}

/** Sends the flood client's requests until one is refused, so the flood measures a client already over its limit. */
async function exhaust (target, tokensFile) {
  const [id, token] = readFileSync(tokensFile, 'utf8').split('\n')[0].split(' ')
  let refused = false
  let sent = 0
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (!refused && sent < 20 * settings.rateLimitMax) {
      sent++
      const res = await fetch(`${target.url}/users/${id}`, { headers: { authorization: `Bearer ${token}` } })
      await res.arrayBuffer()
      if (res.status === 429) refused = true
    }
  }))
  if (!refused) throw new Error(`${target.key}: the flood client was never refused after ${sent} requests`)
}

/** vegeta at `rate`/s for `seconds`, the clients' requests in turn: p99 and the share of non-2xx/errors. */
async function vegeta (target, rate, seconds, targetsText) {
  const { stdout: report } = await run('bash', ['-c',
    `"${VEGETA}" attack -rate=${rate}/s -duration=${seconds}s -timeout=5s -keepalive=true -max-workers=2000 -lazy=false | "${VEGETA}" report -type=json`],
  { timeoutMs: (seconds + 30) * 1000, input: targetsText })
  const r = JSON.parse(report)
  return { rate, p50Ms: r.latencies['50th'] / 1e6, p99Ms: r.latencies['99th'] / 1e6, successShare: r.success, throughput: r.throughput }
}

/** The highest stepped rate whose p99 ≤ the target with every answer 2xx; stops at the first miss. */
async function capacity (target, targetsText) {
  const steps = []
  for (const rate of settings.rates) {
    const step = await vegeta(target, rate, settings.stepS, targetsText.replaceAll('{{URL}}', target.url))
    steps.push(step)
    if (!(step.p99Ms <= settings.p99TargetMs && step.successShare >= 0.999)) break
    await sleep(300)
  }
  const passed = steps.filter((s) => s.p99Ms <= settings.p99TargetMs && s.successShare >= 0.999)
  return { rate: passed.length ? passed[passed.length - 1].rate : 0, steps }
}

// ---------- the targets ----------
async function startNginx (tmp, key, upstreamPort, workers, credential) {
  const prefix = join(tmp, key)
  mkdirSync(prefix, { recursive: true })
  const port = await freePort()
  const conf = readFileSync(join(BENCH, 'nginx.conf'), 'utf8')
    .replaceAll('{{PREFIX}}', prefix).replaceAll('{{PORT}}', String(port)).replaceAll('{{UPSTREAM_PORT}}', String(upstreamPort)).replaceAll('{{CREDENTIAL}}', credential)
    .replaceAll('{{WORKERS}}', String(workers)).replaceAll('{{RATE}}', String(settings.rateLimitMax)).replaceAll('{{BURST}}', String(settings.rateLimitMax))
  writeFileSync(join(prefix, 'nginx.conf'), conf)
  const child = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000) })
  cleanups.push(() => stopChild(child))
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    return (await fetch(`${url}/health`)).ok
  }, { what: `nginx on port ${port}`, timeoutMs: 10_000 })
  return { key, label: `nginx, ${workers} worker${workers > 1 ? 's' : ''}`, kind: 'nginx', workers, url, pids: () => [child.pid, ...childPids(child.pid)], roles: (pid) => pid === child.pid ? 'master' : 'worker' }
}

/** The gateway as `npm start` starts it (its Node flags, default logging), stdout and stderr to a file. */
async function startGatewayAsUser (tmp, key, env, workers) {
  const port = await freePort()
  const logPath = join(tmp, `${key}.log`)
  const fd = openSync(logPath, 'a')
  const child = spawn(process.execPath, [...GATEWAY_NODE_ARGS, join(ROOT, 'dist', 'src', 'server.js')], {
    env: { ...process.env, ...env, PORT: String(port), GATEWAY_WORKERS: String(workers) }, stdio: ['ignore', fd, fd]
  })
  closeSync(fd)
  cleanups.push(() => stopChild(child))
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`${key} exited: ${readFileSync(logPath, 'utf8').slice(-2000)}`)
    return readFileSync(logPath, 'utf8').includes('gateway listening on http://')
  }, { what: `${key} listening`, timeoutMs: 30_000 })
  const url = `http://127.0.0.1:${port}`
  return { key, label: `gateway, ${workers} worker${workers > 1 ? 's' : ''}`, kind: 'gateway', workers, url, logPath, pids: () => [child.pid, ...childPids(child.pid)], roles: (pid) => pid === child.pid ? (workers > 1 ? 'primary' : 'gateway') : 'worker', alive: () => child.exitCode === null }
}

// ---------- the table ----------
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (x, digits = 2) => Number.isFinite(x) ? x.toFixed(digits) : '—'

function summarise (targets, rounds) {
  const pick = (key, f) => median(rounds.map((r) => r[key] ? f(r[key]) : NaN))
  const ratio = (key, ref, f) => median(rounds.map((r) => r[key] && r[ref] ? f(r[key]) / f(r[ref]) : NaN))
  return targets.map((t) => {
    const ref = t.kind === 'gateway' ? `nginx-${t.workers}` : undefined
    const last = rounds[rounds.length - 1][t.key]
    return {
      key: t.key,
      label: t.label,
      workers: t.workers,
      rps: pick(t.key, (r) => r.many.rps),
      floodLimitedPerS: pick(t.key, (r) => r.flood.limitedPerS),
      capacityRate: pick(t.key, (r) => r.capacity.rate),
      cpuUsPerRequest: pick(t.key, (r) => r.many.cpuUsPerRequest),
      cpuUsPerRequestPerProcess: last.many.perProcess.map((p) => ({ role: p.role, cpuUsPerRequest: p.cpuUsPerRequest })),
      rssMbPerProcessPerRound: rounds.map((r) => r[t.key]?.many.perProcess.map((p) => p.rssMb)),
      otherNon2xxShare: pick(t.key, (r) => r.many.otherShare),
      ratioToNginx: ref && {
        rps: ratio(t.key, ref, (r) => r.many.rps),
        flood: ratio(t.key, ref, (r) => r.flood.limitedPerS),
        capacity: ratio(t.key, ref, (r) => r.capacity.rate)
      }
    }
  })
}

function renderTable (rows) {
  const header = ['target', 'req/s', '× nginx', `capacity /s at p99 ≤ ${settings.p99TargetMs} ms`, '× nginx', '429/s flood', '× nginx', 'CPU µs/req (per process)', 'RSS MB per process, by round']
  const lines = rows.map((r) => [r.label, fmt(r.rps, 0), fmt(r.ratioToNginx?.rps), fmt(r.capacityRate, 0), fmt(r.ratioToNginx?.capacity), fmt(r.floodLimitedPerS, 0), fmt(r.ratioToNginx?.flood),
    `${fmt(r.cpuUsPerRequest, 0)} (${r.cpuUsPerRequestPerProcess.map((p) => `${p.role} ${fmt(p.cpuUsPerRequest, 0)}`).join(', ')})`,
    r.rssMbPerProcessPerRound.map((mbs) => (mbs ?? []).map((x) => fmt(x, 0)).join('+')).join(' / ')])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const row = (cells) => `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ')} |`
  return [row(header), `|${widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|')}|`, ...lines.map(row)].join('\n')
}

function goals (rows) {
  const row = (key) => rows.find((r) => r.key === key)
  const g1 = row('gateway-1')
  const gN = row(`gateway-${settings.workers}`)
  const out = []
  if (g1?.ratioToNginx) {
    out.push({ goal: 'throughput, 1 worker each ≥ 0.40 × nginx', value: g1.ratioToNginx.rps, met: g1.ratioToNginx.rps >= 0.40 })
    out.push({ goal: `capacity at p99 ≤ ${settings.p99TargetMs} ms, 1 worker each ≥ 0.40 × nginx`, value: g1.ratioToNginx.capacity, met: g1.ratioToNginx.capacity >= 0.40 })
    out.push({ goal: '429s per second under a flood ≥ 0.50 × nginx', value: g1.ratioToNginx.flood, met: g1.ratioToNginx.flood >= 0.50 })
  }
  if (g1 && gN && gN !== g1) out.push({ goal: `${settings.workers} workers vs 1 worker, gateway ≥ 1.3 ×`, value: gN.rps / g1.rps, met: gN.rps / g1.rps >= 1.3 })
  for (const r of rows.filter((x) => x.key.startsWith('gateway'))) {
    const perRound = r.rssMbPerProcessPerRound.map((mbs) => Math.max(...(mbs ?? [NaN])))
    out.push({ goal: `${r.label}: RSS per process ≤ 150 MB, flat over rounds`, value: Math.max(...perRound), met: Math.max(...perRound) <= 150 && (perRound.length < 2 || perRound[perRound.length - 1] <= 1.05 * perRound[perRound.length - 2]) })
  }
  return out
}

// ---------- main ----------
async function main () {
  const startedAt = new Date()
  const loadAvgAtStart = loadavg().map((l) => Math.round(l * 100) / 100)
  const perTarget = 2 * settings.wrkS + settings.floodS + settings.rates.length * (settings.stepS + 2) + 10
  const boundMs = (settings.rounds * perTarget * 4 + 240) * 1000
  const watchdog = setTimeout(() => { log(`over the ${Math.round(boundMs / 1000)} s bound: stopping`); teardown().finally(() => process.exit(1)) }, boundMs)
  watchdog.unref()

  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-'))
  cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }))
  log(`profile ${settings.profile}: ${settings.rounds} rounds; workers 1 and ${settings.workers}; tmp ${tmp}`)
  const tokensFile = join(tmp, 'tokens.txt')
  await writeTokensFile(tokensFile, settings.clients)
  // vegeta's targets: each client's request in turn (the URL filled per target), the flood's client left out.
  const targetsText = vegetaTargets('{{URL}}', tokensFile)

  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const stubs = await startStubs({ JWT_SECRET })
  cleanups.push(() => stubs.stop())

  // Redis mode as a user runs it; every other variable at its default. One Redis per gateway target, so the two
  // targets' counters never add up (each flood client is over its own limit either way).
  const gatewayEnv = async () => {
    const own = await startRedis()
    cleanups.push(() => own.stop())
    // RATE_LIMIT_IP_MAX out of the way: wrk and vegeta are one address standing for 10 000 clients (nginx keys per client too).
    return { ...stubs.gatewayEnv, JWT_SECRET, JWT_TTL_SECONDS, REDIS_URL: own.url, RATE_LIMIT_IP_MAX: '1000000000' }
  }
  const workerCounts = [...new Set([1, settings.workers])]
  const targets = []
  for (const n of workerCounts) {
    targets.push(await startNginx(tmp, `nginx-${n}`, stubs.user.port, n, stubs.gatewayEnv.STUB_CREDENTIAL))
    targets.push(await startGatewayAsUser(tmp, `gateway-${n}`, await gatewayEnv(), n))
  }

  for (const t of targets) {
    log(`warm-up ${t.key}: ${settings.clients} clients once, then ${settings.warmupS}s`)
    await sweepClients(t.url, tokensFile)
    await wrk(t, 'many', settings.warmupS, tokensFile)
  }

  const rounds = []
  for (let round = 0; round < settings.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length])
    const results = Object.fromEntries(order.map((t) => [t.key, {}]))
    for (const phase of ['many', 'flood', 'capacity']) {
      for (const t of order) {
        if (t.alive && !t.alive()) throw new Error(`${t.key} died`)
        const r = phase === 'many'
          ? await wrk(t, 'many', settings.wrkS, tokensFile)
          : phase === 'flood' ? await exhaust(t, tokensFile).then(() => wrk(t, 'hot', settings.floodS, tokensFile)) : await capacity(t, targetsText)
        results[t.key][phase] = r
        log(`round ${round + 1} ${phase.padEnd(8)} ${t.key.padEnd(10)} ${phase === 'capacity'
          ? `${r.rate}/s (${r.steps.map((s) => `${s.rate}: p99 ${fmt(s.p99Ms)} ms ${fmt(s.successShare * 100, 1)} % ok`).join('; ')})`
          : `${r.rps} req/s, ${r.limitedPerS} × 429/s, ${r.cpuUsPerRequest} CPU µs/req`}`)
        await sleep(300)
      }
    }
    rounds.push(results)
  }

  const rows = summarise(targets, rounds)
  const table = renderTable(rows)
  const configuration = [
    `gateway: \`node ${GATEWAY_NODE_ARGS.join(' ')} dist/src/server.js\` as \`npm start\` runs it, REDIS_URL set (one redis-server per gateway), GATEWAY_WORKERS 1 and ${settings.workers}, every other variable at its default but RATE_LIMIT_IP_MAX (one load-generator address stands for many clients) (LOG_LEVEL=info: one access line per request, asynchronous; RATE_LIMIT_MAX=${settings.rateLimitMax} per 60 s), stdout to a file.`,
    `nginx: bench/nginx.conf, worker_processes like the gateway, limit_req ${settings.rateLimitMax} r/m burst ${settings.rateLimitMax} per Authorization header, proxy_pass keep-alive to the same user stub, access_log on.`,
    `req/s: wrk -t1 -c${settings.connections} -d${settings.wrkS}s, GET /users/:id with the Bearer token of one of ${settings.clients} clients per request.`,
    `429/s flood: the same for ${settings.floodS}s with one client already over its ${settings.rateLimitMax}/min (sent until refused first).`,
    `capacity: vegeta at constant rates ${settings.rates.join(', ')}/s for ${settings.stepS}s each (stops at the first miss); the highest with p99 ≤ ${settings.p99TargetMs} ms and ≥ 99.9 % 2xx.`,
    'CPU µs/req: user+system CPU of each of the target\'s processes per request of the throughput run; RSS: VmRSS of each process after it, per round.',
    `Medians over ${settings.rounds} alternating round(s); × nginx = median of the per-round ratios to nginx with the same worker count. The load generators share the ${cpus().length} CPUs with the targets.`
  ]
  const goalList = goals(rows)
  const m = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30), node: process.version, loadAvgAtStart, loadAvgAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) }
  const version = (cmd, a) => { const r = spawnSync(cmd, a, { encoding: 'utf8' }); return (r.stdout || r.stderr || '').trim().split('\n')[0] }
  // `go install` builds print no version of their own; Go's build info holds the module version.
  const vegetaVersion = /\tmod\t\S+\t(v\S+)/.exec(spawnSync('go', ['version', '-m', VEGETA], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? version(VEGETA, ['-version'])
  m.tools = [version('nginx', ['-v']), version('wrk', ['-v']), `vegeta ${vegetaVersion}`].join('; ')
  const report = { date: startedAt.toISOString(), command: `node bench/run.mjs ${args.join(' ')}`.trim(), machine: m, settings, configuration, table, goals: goalList, targets: rows, rounds }
  mkdirSync(join(ROOT, 'results'), { recursive: true })
  writeFileSync(join(ROOT, 'results', 'bench.json'), JSON.stringify(report, null, 2) + '\n')
  const goalLines = goalList.map((g) => `- ${g.met ? 'met' : '**not met**'}: ${g.goal} — ${fmt(g.value)}`)
  const md = [
    '# Benchmark: the gateway vs nginx', '',
    `Generated by \`${report.command}\` (${settings.profile} profile) on ${m.cpus} CPUs (${m.cpuModel}), ${m.memGb} GB, Node ${m.node}; ${m.tools}. Load average ${m.loadAvgAtStart.join(' ')} at the start, ${m.loadAvgAtEnd.join(' ')} at the end. Do not edit: \`npm run bench\` rewrites this file and results/bench.json.`, '',
    '## Configuration measured', '', ...configuration.map((c) => `- ${c}`), '',
    '## Results', '', table, '',
    `## Targets of the performance issue (${settings.profile === 'ci' ? 'short profile: informational only' : 'this run'})`, '', ...goalLines, '',
    'What the figures mean and why a target is missed: [PERFORMANCE.md](PERFORMANCE.md).', ''
  ].join('\n')
  writeFileSync(join(ROOT, 'docs', 'BENCH.md'), md)
  console.log(`\nBenchmark (${settings.profile} profile, ${m.cpus} CPUs, load avg ${m.loadAvgAtStart.join(' ')} → ${m.loadAvgAtEnd.join(' ')})\n`)
  console.log(table)
  console.log('\n' + configuration.map((c) => `- ${c}`).join('\n'))
  console.log(`\nTargets (printed, never an exit code):\n${goalLines.join('\n')}`)
  console.log('\nwritten: docs/BENCH.md, results/bench.json')
}

try {
  await main()
} catch (err) {
  log('FAILED:', err.stack ?? err.message)
  process.exitCode = 1
} finally {
  await teardown()
}
