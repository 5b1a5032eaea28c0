#!/usr/bin/env node
// npm run load -- <tc-id>|all [<tc-id> …] [--keep] [--report [docs/RESULTS.md]]
//
// Runs the k6 test cases in load-tests/ with real k6. Unless BASE_URL is set, it starts what they need on free
// loopback ports: redis-server, the three stubs (Redis mode, STUB_FAULTS=1) and, per TC, a fresh gateway (Redis
// mode, TRUST_PROXY=1 so k6 can act as many clients through X-Forwarded-For) with the settings that TC asserts
// against. Unless PROMETHEUS_URL is set it starts Prometheus with the remote-write receiver, and every k6 run writes
// into it (-o experimental-prometheus-rw, one `testid` tag per run). k6's web dashboard is live on one loopback port
// while each TC runs. Each invocation writes into a folder of its own, results/load/<start>-<tc|all>/ (also reached
// as results/load/latest): per TC <tc>.json (handleSummary), <tc>.html (dashboard export), <tc>.log (k6 output),
// <tc>.audit.jsonl (its gateway's audit log), and load-run.json (the table). Prints one table, exits 1 if any failed.
// --keep: the stack (gateway, stubs, Redis, Prometheus) stays up after the run, with the URLs printed, until Ctrl-C.
//
// Env: PROFILE=ci|full (default ci), BASE_URL + AUTH_ADMIN_URL/USER_ADMIN_URL/ORDER_ADMIN_URL (a running stack),
// PROMETHEUS_URL (a running Prometheus with --web.enable-remote-write-receiver), K6_BIN, RESULTS_DIR (the parent of
// the run folders, default results/load, relative to the repository or absolute).
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, relative, resolve, sep } from 'node:path'
import { ROOT, freePort, setFault, startGateway, startRedis, startStubs, waitFor } from './lib/stack.mjs'
import { startPrometheus } from './lib/prometheus.mjs'
import { k6Binary, k6Version, runK6 } from './lib/k6.mjs'
import { machine as hostMachine } from './lib/report.mjs'

const PROFILE = process.env.PROFILE || 'ci'
const RESULTS_PARENT = process.env.RESULTS_DIR || join('results', 'load')
/** This invocation's folder under RESULTS_PARENT (set in main: runs never overwrite each other). */
let RESULTS_DIR
const EXTERNAL = Boolean(process.env.BASE_URL)

// Gateway settings for every TC: Redis mode, k6's X-Forwarded-For trusted, a global limit that never binds (the
// rl TCs set their own), quiet logs.
// TRUST_PROXY=1: k6 on loopback is the one proxy hop; its X-Forwarded-For entry is the client. The address layers are
// out of the lab's way (its TCs assert the per-user limits). AGENT_AUTH=open: these TCs were written before agent keys
// (tc-agents-keys sets key mode for itself).
const BASE_GATEWAY_ENV = { TRUST_PROXY: '1', LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '100000', RATE_LIMIT_WINDOW_MS: '60000', RATE_LIMIT_IP_MAX: '1000000000', RATE_LIMIT_LOGIN_IP_MAX: '1000000000', RATE_LIMIT_LOGIN_ACCOUNT_MAX: '1000000000', AGENT_AUTH: 'open' }
// --- agents (issue 13): the admin token tc-agents-keys issues its keys with (random per run: no shipped secret), and
// the IRL seed's own figures.
const LAB_ADMIN_TOKEN = randomBytes(24).toString('hex')
const SEED_FIGURES = { 'seed-basic': 'seed: 381 req/s, p50 1.83 ms, p95 11.73 ms, 24.13 % limited, 0 errors' }

/**
 * Every TC in the order `all` runs them; `gateway` is what that TC's gateway is started with; `short` ones (a few
 * seconds in ci) get a finer dashboard period so the HTML export has data points at all.
 */
const TCS = {
  'tc-rl-001': { short: true, about: 'rate limit: past the limit → 429, nothing reaches the upstream', gateway: { RATE_LIMIT_MAX: '100' } },
  'tc-rl-002': { short: true, about: 'rate-limit headers on every response, Remaining −1 each', gateway: { RATE_LIMIT_MAX: '100' } },
  // ci: a 1 s upstream timeout keeps the hanging trip short; full: the default 5 s.
  'tc-cb-001': { short: true, about: 'breaker opens after 5 failures, then fast 503s', gateway: { BREAKER_RESET_TIMEOUT_MS: '60000', USER_TIMEOUT_MS: PROFILE === 'ci' ? '1000' : '5000' } },
  'tc-cb-002': { about: 'breaker half-opens, 3 successes close it, traffic resumes', gateway: { BREAKER_RESET_TIMEOUT_MS: '2000' } },
  'tc-mon-001': { short: true, about: '/metrics deltas equal the requests sent' },
  'tc-audit-001': { short: true, about: 'audit log holds exactly the security events caused', verify: verifyAuditLog },
  'tc-res-001': { about: 'past capacity: 429/503 rise, nothing else fails, latency bounded' },
  'tc-lock-001': { short: true, about: 'one user: exactly one write wins; distinct users: all win' },
  'tc-latency-001': { about: 'p90/p99 per service under the env thresholds' },
  'tc-load-basic': { about: 'mixed endpoints, 10 000 agents' },
  'tc-stress': { about: 'light (1–2 tokens) and heavy (5–20 tokens) agents' },
  'tc-spike': { about: 'VUs jump ×10 and back; recovery checked' },
  // --- agents (issue 13)
  'tc-agents-keys': { about: '10 000 keyed agents from one address, each limited by its own bucket', gateway: { AGENT_AUTH: 'key', ADMIN_TOKEN: LAB_ADMIN_TOKEN, RATE_LIMIT_MAX: '100', AGENT_QUOTA_CAPACITY: '1', AGENT_QUOTA_REFILL_PER_SECOND: '0.001', REDIS_COMMAND_TIMEOUT_MS: '2000' }, timeoutS: () => 420 },
  // tc-agents-usage is about token debits: at ~1 600 req/s, 20 agents pass their 1 000 requests a minute in 15 s.
  'tc-agents-usage': { about: 'keyed agents call the model; /metrics debits equal the usage k6 saw', gateway: { AGENT_AUTH: 'key', ADMIN_TOKEN: LAB_ADMIN_TOKEN, AGENT_QUOTA_CAPACITY: '200', AGENT_QUOTA_REFILL_PER_SECOND: '50', AGENT_QUOTA_REQUESTS_PER_MINUTE: '1000000', REDIS_COMMAND_TIMEOUT_MS: '2000' }, verify: verifyUsageDebits },
  'seed-basic': { script: 'load-tests/seed/basic.js', about: 'the IRL seed\'s basic script (form body, AGENT_AUTH=open)', verify: beside('seed-basic') },
  'seed-stress': { script: 'load-tests/seed/stress.js', about: 'the IRL seed\'s stress script (light + heavy agents)', verify: beside('seed-stress'), timeoutS: () => (PROFILE === 'ci' ? 120 : 480) },
  'seed-spike': { script: 'load-tests/seed/spike.js', about: 'the IRL seed\'s spike script (50 → 500 → 50 VUs)', verify: beside('seed-spike'), timeoutS: () => (PROFILE === 'ci' ? 120 : 300) },
  'tc-soak': { about: 'steady load for SOAK_DURATION', timeoutS: () => durationS(process.env.SOAK_DURATION ?? (PROFILE === 'ci' ? '20s' : '30m')) + 120 }
}
/** Gateway settings the TCs read (with -e) to know what to expect. */
const EXPECTATION_VARS = ['RATE_LIMIT_MAX', 'RATE_LIMIT_WINDOW_MS', 'RATE_LIMIT_DEMO_MAX', 'BREAKER_FAILURE_THRESHOLD', 'BREAKER_SUCCESS_THRESHOLD',
  'BREAKER_RESET_TIMEOUT_MS', 'USER_TIMEOUT_MS', 'AGENT_QUOTA_CAPACITY', 'ADMIN_TOKEN']
const TREND_STATS = 'p(50),p(90),p(95),p(99),min,max,avg'

function durationS (text) {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(text)
  if (!match) throw new Error(`not a duration: ${text} (use e.g. 45s, 10m, 1h)`)
  return Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2]]
}

function parseArgs (argv) {
  const tcs = []
  let report
  let keep = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--keep') keep = true
    else if (arg === '--report') report = argv[i + 1] && !argv[i + 1].startsWith('-') && !TCS[argv[i + 1]] && argv[i + 1] !== 'all' ? argv[++i] : 'docs/RESULTS.md'
    else if (arg === 'all') tcs.push(...Object.keys(TCS))
    else if (TCS[arg]) tcs.push(arg)
    else throw new Error(`unknown argument "${arg}"; use: npm run load -- <${Object.keys(TCS).join('|')}|all> [--keep] [--report [path]]`)
  }
  if (tcs.length === 0) throw new Error(`which TC? npm run load -- <tc-id>|all   (${Object.keys(TCS).join(', ')})`)
  return { tcs: [...new Set(tcs)], report, keep }
}

// ---- the stack ---------------------------------------------------------------------------------------------------

const cleanups = []
let currentK6
let interrupted = false

async function startOwnStack () {
  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const stubs = await startStubs({ REDIS_URL: redis.url, STUB_FAULTS: '1', LOG_LEVEL: 'warn' })
  cleanups.push(() => stubs.stop())
  const gatewayPort = await freePort()
  let gateway
  let tcEnv = BASE_GATEWAY_ENV
  cleanups.push(() => gateway?.stop())
  return {
    gatewayPort,
    urls: { gateway: `http://127.0.0.1:${gatewayPort}`, redis: redis.url, 'auth stub': stubs.auth.url, 'user stub': stubs.user.url, 'order stub': stubs.order.url },
    vars: { BASE_URL: `http://127.0.0.1:${gatewayPort}`, AUTH_ADMIN_URL: stubs.auth.url, USER_ADMIN_URL: stubs.user.url, ORDER_ADMIN_URL: stubs.order.url },
    scrapeTargets: { gateway: [`127.0.0.1:${gatewayPort}`], stubs: [stubs.auth, stubs.user, stubs.order].map((s) => `127.0.0.1:${s.port}`) },
    describe: `redis ${redis.url}, stubs ${stubs.auth.url} ${stubs.user.url} ${stubs.order.url}`,
    /** A fresh gateway on the same port with this TC's settings (the previous one is stopped first). */
    async restartGateway (env) {
      await gateway?.stop()
      tcEnv = env
      gateway = await startGateway({ ...stubs.gatewayEnv, REDIS_URL: redis.url, PORT: String(gatewayPort), ...env })
      return gateway
    },
    /** The settings the last TC's gateway was started with. */
    lastGatewayEnv: () => tcEnv,
    async stopGateway () { await gateway?.stop() },
    /** Every stub back to "ok": a TC that failed in setup() never reached the teardown that heals its fault. */
    async resetFaults () { await Promise.all([stubs.auth, stubs.user, stubs.order].map((stub) => setFault(stub, 'ok'))) }
  }
}

function externalStack () {
  const vars = { BASE_URL: process.env.BASE_URL }
  for (const name of ['AUTH_ADMIN_URL', 'USER_ADMIN_URL', 'ORDER_ADMIN_URL']) if (process.env[name]) vars[name] = process.env[name]
  return { vars, urls: { gateway: process.env.BASE_URL }, describe: `the running stack at ${process.env.BASE_URL}`, scrapeTargets: undefined }
}

async function teardown () {
  currentK6?.stop()
  while (cleanups.length) {
    try { await cleanups.pop()() } catch (err) { console.error(`teardown: ${err.message}`) }
  }
}

/** Set while --keep holds the stack up after the run: Ctrl-C then ends it with the run's own exit code. */
let keeping
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    if (keeping) { console.error(`\n${signal}: stopping the kept stack`); keeping(); return }
    interrupted = true
    console.error(`\n${signal}: stopping k6 and tearing the stack down`)
    teardown().finally(() => process.exit(130))
  })
}

// ---- one TC --------------------------------------------------------------------------------------------------------

async function runTc (tc, stack, prometheus, stamp, dashboardPort) {
  const spec = TCS[tc]
  const resultsJson = resolve(ROOT, RESULTS_DIR, `${tc}.json`)
  const auditPath = resolve(ROOT, RESULTS_DIR, `${tc}.audit.jsonl`)
  const htmlReport = resolve(ROOT, RESULTS_DIR, `${tc}.html`)
  rmSync(resultsJson, { force: true })
  rmSync(htmlReport, { force: true })
  const gatewayEnv = { ...BASE_GATEWAY_ENV, ...spec.gateway }
  let gateway
  let gatewayExit
  if (stack.restartGateway) {
    await stack.resetFaults()
    rmSync(auditPath, { force: true })
    gateway = await stack.restartGateway({ ...gatewayEnv, AUDIT_LOG_PATH: auditPath })
    gateway.process.once('exit', (code, signal) => { gatewayExit = `gateway exited during the run (${code ?? signal}): ${gateway.stderr().slice(-500)}` })
  }
  const expectations = Object.fromEntries(EXPECTATION_VARS
    .map((name) => [name, stack.restartGateway ? gatewayEnv[name] : process.env[name]])
    .filter(([, value]) => value !== undefined))
  const externalAudit = !stack.restartGateway && process.env.AUDIT_LOG_PATH
  const auditOffset = externalAudit && existsSync(externalAudit) ? statSync(externalAudit).size : 0

  const testid = `${tc}-${stamp}`
  const timeoutS = spec.timeoutS?.() ?? (PROFILE === 'ci' ? 120 : 1800)
  currentK6 = runK6({
    script: spec.script ?? join('load-tests', `${tc}.js`),
    vars: { ...stack.vars, PROFILE, RESULTS_DIR, RUN_ID: Date.now().toString(36), ...expectations },
    tags: { testid },
    outputs: ['experimental-prometheus-rw'],
    env: {
      K6_PROMETHEUS_RW_SERVER_URL: prometheus.remoteWriteUrl,
      K6_PROMETHEUS_RW_TREND_STATS: TREND_STATS,
      K6_WEB_DASHBOARD: 'true',
      K6_WEB_DASHBOARD_EXPORT: join(RESULTS_DIR, `${tc}.html`),
      K6_WEB_DASHBOARD_HOST: '127.0.0.1',
      K6_WEB_DASHBOARD_PORT: String(dashboardPort), // one free port for every TC, so a browser tab can stay open
      // The export needs two snapshots: 1 s keeps the charts readable, 100 ms gives the seconds-long TCs some.
      K6_WEB_DASHBOARD_PERIOD: spec.short ? '100ms' : '1s'
    },
    logFile: resolve(ROOT, RESULTS_DIR, `${tc}.log`),
    timeoutMs: timeoutS * 1000
  })
  const run = await currentK6.promise
  currentK6 = undefined

  const reasons = []
  const info = []
  let data
  try { data = JSON.parse(readFileSync(resultsJson, 'utf8')) } catch { reasons.push(`no ${relative(ROOT, resultsJson)} (see ${RESULTS_DIR}/${tc}.log)`) }
  if (run.timedOut) reasons.push(`timed out after ${timeoutS} s`)
  if (run.code !== 0) reasons.push(run.code === 99 ? 'thresholds crossed' : `k6 exited ${run.code ?? run.signal}`)
  if (gatewayExit) reasons.push(gatewayExit)
  if (data) reasons.push(...failedThresholds(data))
  if (spec.verify && data && !gatewayExit) {
    const verdict = await spec.verify({ data, auditPath: externalAudit || auditPath, auditOffset, stopGateway: stack.stopGateway })
    if (!verdict.ok) reasons.push(verdict.detail)
    else info.push(verdict.detail)
  }
  if (!existsSync(htmlReport)) info.push(`no ${RESULTS_DIR}/${tc}.html: k6 skips the dashboard export when a run is shorter than two periods`)
  if (reasons.length && existsSync(resolve(ROOT, RESULTS_DIR, `${tc}.log`))) {
    const tail = readFileSync(resolve(ROOT, RESULTS_DIR, `${tc}.log`), 'utf8').split('\n').filter((l) => /level=(error|warn)|✗/.test(l)).slice(-15)
    if (tail.length) console.log(tail.map((l) => `    | ${l}`).join('\n'))
  }
  return { tc, testid, passed: reasons.length === 0, reasons, info, seconds: run.ms / 1000, ...figures(data) }
}

function failedThresholds (data) {
  return Object.entries(data.metrics).flatMap(([metric, def]) =>
    Object.entries(def.thresholds ?? {}).filter(([, r]) => !r.ok).map(([expr]) => `${metric} ${expr} failed`))
}

function figures (data) {
  const m = data?.metrics ?? {}
  const d = m.http_req_duration?.values ?? {}
  return {
    requests: m.http_reqs?.values.count,
    rps: m.http_reqs?.values.rate,
    p50: d.med,
    p95: d['p(95)'],
    p99: d['p(99)'],
    errors: m.tc_non_429_errors?.values.rate,
    limited: m.tc_rate_limited?.values.rate
  }
}

/** The seed scripts: this run's figures beside the IRL seed's (always ok; the thresholds judge the run). */
function beside (tc) {
  return async ({ data }) => {
    const f = figures(data)
    const ours = `this run: ${fmt.rate(f.rps)} req/s, p50 ${fmt.ms(f.p50)} ms, p95 ${fmt.ms(f.p95)} ms, ${fmt.pct(f.limited)} % limited, ${fmt.pct(f.errors)} % errors`
    return { ok: true, detail: [ours, SEED_FIGURES[tc]].filter(Boolean).join(' | ') }
  }
}

/** tc-agents-usage: the tokens the gateway debited over the run equal the usage.total_tokens k6 saw in the answers. */
async function verifyUsageDebits ({ data }) {
  const seen = data.metrics.tc_usage_tokens?.values.count
  const debited = data.metrics.tc_gateway_debited_tokens?.values.count
  return { ok: seen > 0 && seen === debited, detail: `usage k6 saw ${seen} tokens, gateway debited ${debited}` }
}

/** tc-audit-001: the audit log's events per type equal what k6 proved it caused (tc_audit_expected{type:…}). */
async function verifyAuditLog ({ data, auditPath, auditOffset, stopGateway }) {
  const expected = {}
  for (const [key, def] of Object.entries(data.metrics)) {
    const match = /^tc_audit_expected\{type:(\w+)\}$/.exec(key)
    if (match) expected[match[1]] = def.values.count
  }
  if (Object.keys(expected).length === 0) return { ok: false, detail: 'the summary has no tc_audit_expected{type:…} counts' }
  const read = () => {
    const counts = {}
    if (!existsSync(auditPath)) return counts
    const text = readFileSync(auditPath).subarray(auditOffset).toString('utf8')
    for (const line of text.split('\n')) {
      if (!line.trim()) continue
      // A `<type>_summary` line stands for `count` denials of one key (plugins/audit-log.ts); other lines count 1.
      const { type, count = 1 } = JSON.parse(line)
      const base = type.replace(/_summary$/, '')
      counts[base] = (counts[base] ?? 0) + count
    }
    return counts
  }
  const same = (counts) => [...new Set([...Object.keys(expected), ...Object.keys(counts)])].every((t) => counts[t] === expected[t])
  let counts
  if (stopGateway) {
    await stopGateway() // graceful close flushes the audit destination
    counts = read()
  } else {
    counts = await waitFor(() => { const c = read(); return same(c) && c }, { timeoutMs: 5000, what: 'audit log counts' }).catch(() => read())
  }
  const types = [...new Set([...Object.keys(expected), ...Object.keys(counts)])].sort()
  const detail = `audit log vs k6: ${types.map((t) => `${t} ${counts[t] ?? 0}/${expected[t] ?? 0}`).join(', ')}`
  return { ok: same(counts), detail }
}

// ---- report --------------------------------------------------------------------------------------------------------

const fmt = {
  int: (v) => (v === undefined ? '-' : String(Math.round(v))),
  rate: (v) => (v === undefined ? '-' : v.toFixed(1)),
  ms: (v) => (v === undefined ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1)),
  pct: (v) => (v === undefined ? '-' : (v * 100).toFixed(2))
}
const COLUMNS = [
  ['TC', (r) => r.tc], ['result', (r) => (r.passed ? 'pass' : 'FAIL')], ['requests', (r) => fmt.int(r.requests)],
  ['req/s', (r) => fmt.rate(r.rps)], ['p50 ms', (r) => fmt.ms(r.p50)], ['p95 ms', (r) => fmt.ms(r.p95)],
  ['p99 ms', (r) => fmt.ms(r.p99)], ['non-429 err %', (r) => fmt.pct(r.errors)], ['429 %', (r) => fmt.pct(r.limited)],
  ['time s', (r) => r.seconds.toFixed(1)]
]

function textTable (rows) {
  const cells = [COLUMNS.map(([h]) => h), ...rows.map((r) => COLUMNS.map(([, f]) => f(r)))]
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((row) => row[i].length)))
  const line = (row) => row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n')
}

function markdownTable (rows) {
  const cells = rows.map((r) => COLUMNS.map(([, f]) => f(r)))
  return [`| ${COLUMNS.map(([h]) => h).join(' | ')} |`, `|${COLUMNS.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`,
    ...cells.map((row) => `| ${row.join(' | ')} |`)].join('\n')
}

/** The report's machine line: scripts/lib/report.mjs's, plus k6. */
function machine () {
  return { ...hostMachine(), k6: k6Version() }
}

/** The value a threshold expression is about ("p(95)<200" → values["p(95)"]), formatted. */
function thresholdValue (expr, values) {
  const key = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)/.exec(expr)?.[1]
  const value = values[key]
  return value === undefined ? '' : `${key}=${Number.isInteger(value) ? value : value.toFixed(3)}`
}

function checksOf (group, out = new Map()) {
  for (const c of group.checks ?? []) {
    const seen = out.get(c.name) ?? { passes: 0, fails: 0 }
    out.set(c.name, { passes: seen.passes + c.passes, fails: seen.fails + c.fails })
  }
  for (const g of group.groups ?? []) checksOf(g, out)
  return out
}

/** Markdown lines: every check (with its count) and every threshold (with the value it judged) of one TC. */
function assertionLines (tc) {
  let data
  try { data = JSON.parse(readFileSync(resolve(ROOT, RESULTS_DIR, `${tc}.json`), 'utf8')) } catch { return ['- (no summary)'] }
  const checks = [...checksOf(data.root_group)].map(([name, c]) => `- ${c.fails ? '✗' : '✓'} check: ${name} (${c.fails ? `${c.fails} of ${c.passes + c.fails} failed` : `${c.passes}×`})`)
  const thresholds = Object.entries(data.metrics).flatMap(([metric, def]) => Object.entries(def.thresholds ?? {})
    .map(([expr, r]) => `- ${r.ok ? '✓' : '✗'} threshold: \`${metric}\` \`${expr}\` (${thresholdValue(expr, def.values)})`))
  return [...checks, ...thresholds]
}

function writeReport (path, { rows, started, loadAvg, totalS, command, stackDescription, promCheck, screenshot }) {
  const m = machine()
  const screenshotText = screenshot
    ? `![k6 web dashboard export of ${screenshot.tc}](${screenshot.file})

The picture is the k6 web dashboard's self-contained HTML export of ${screenshot.tc} from this run
(\`results/load/<run>/<tc>.html\`, written for every TC by \`K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_EXPORT=…\`), rendered
with headless Chromium.`
    : 'Every TC also wrote its k6 web dashboard export to `results/load/<run>/<tc>.html`; no Chromium was found to picture one.'
  const md = `# Load-test results

Generated by \`scripts/load.mjs --report\` from a real run; do not edit by hand.

- **Date:** ${started.toISOString()}
- **Command:** \`${command}\`
- **Profile:** ${PROFILE}
- **Machine:** ${m.nproc} CPUs available (nproc), ${m.cpu}, ${m.memGiB} GiB RAM, ${m.os}; load average ${loadAvg} when the run started (the machine was shared with other work)
- **Versions:** node ${m.node}, ${m.k6}, redis ${m.redis}, prometheus ${m.prometheus}
- **Stack:** ${stackDescription}; gateway in Redis mode with \`TRUST_PROXY=1\`, restarted per TC with that TC's settings
- **Total time:** ${totalS.toFixed(0)} s for ${rows.length} TCs, ${rows.filter((r) => r.passed).length} passed

${markdownTable(rows)}

Columns: requests and req/s count every HTTP request k6 made (setup and teardown included); p50/p95/p99 are
\`http_req_duration\` over all of them; "non-429 err %" counts every status ≥ 400 other than 429 and network errors,
so it is high by design where 401/403/502/503 are what the TC provokes (tc-cb-*, tc-lock-001, tc-audit-001);
"429 %" is the share of 429 answers.

${promCheck}

${screenshotText}

## Per TC: what it asserts and what it measured

${rows.map((r) => `### ${r.tc} — ${r.passed ? 'pass' : 'FAIL'}

${TCS[r.tc].about[0].toUpperCase()}${TCS[r.tc].about.slice(1)}. Gateway: \`${Object.entries({ ...BASE_GATEWAY_ENV, ...TCS[r.tc].gateway }).map(([k, v]) => `${k}=${v}`).join(' ')}\`.${r.reasons.length ? `\n\nFailed: ${r.reasons.join('; ')}` : ''}${r.info.length ? `\n\n${r.info.join('; ')}` : ''}

${assertionLines(r.tc).join('\n')}
`).join('\n')}`
  mkdirSync(resolve(ROOT, path, '..'), { recursive: true })
  writeFileSync(resolve(ROOT, path), md)
  console.log(`wrote ${path}`)
}

/**
 * For --report: a PNG of one TC's dashboard export (tc-spike's when it ran: its charts show the most), taken with
 * headless Chromium (Debian's `chromium`, or CHROMIUM=/path) into <report folder>/k6-dashboard.png.
 */
async function screenshotDashboard (rows, folder) {
  const chromium = process.env.CHROMIUM ?? 'chromium'
  const row = rows.find((r) => r.tc === 'tc-spike' && r.passed) ?? rows.find((r) => existsSync(resolve(ROOT, RESULTS_DIR, `${r.tc}.html`)))
  if (!row || !existsSync(resolve(ROOT, RESULTS_DIR, `${row.tc}.html`))) return undefined
  const profile = mkdtempSync(join(tmpdir(), 'gw-chromium-'))
  mkdirSync(resolve(ROOT, folder), { recursive: true })
  const file = resolve(ROOT, folder, 'k6-dashboard.png')
  try {
    const result = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--hide-scrollbars',
      '--virtual-time-budget=5000', `--screenshot=${file}`, '--window-size=1400,1000', `file://${resolve(ROOT, RESULTS_DIR, `${row.tc}.html`)}`],
    { timeout: 60_000, stdio: 'ignore' })
    if (result.error || result.status !== 0) {
      console.error(`screenshot skipped: ${chromium} ${result.error?.message ?? `exited ${result.status}`} (apt-get install chromium, or set CHROMIUM)`)
      return undefined
    }
    console.log(`wrote ${relative(ROOT, file)} from ${RESULTS_DIR}/${row.tc}.html`)
    return { tc: row.tc, file: 'k6-dashboard.png' }
  } finally {
    rmSync(profile, { recursive: true, force: true })
  }
}

/** Asks Prometheus which of this run's testids it holds k6 series for (proves the remote write worked). */
async function checkPrometheus (prometheus, rows) {
  const query = `count by (testid) (k6_http_reqs_total{testid=~"${rows.map((r) => r.testid).join('|')}"})`
  try {
    const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`)
    const body = await res.json()
    const seen = new Set(body.data.result.map((s) => s.metric.testid))
    const missing = rows.filter((r) => !seen.has(r.testid)).map((r) => r.testid)
    return `Prometheus (${prometheus.url}) holds \`k6_http_reqs_total\` series for ${seen.size} of ${rows.length} runs of this invocation` +
      (missing.length ? ` (missing: ${missing.join(', ')})` : '') + ` (query: \`${query.replace(/\{.*\}/, '{testid=~"<this run>"}')}\`).`
  } catch (err) {
    return `Prometheus check failed: ${err.message}`
  }
}

// ---- main ----------------------------------------------------------------------------------------------------------

async function main () {
  const { tcs, report, keep } = parseArgs(process.argv.slice(2))
  if (PROFILE !== 'ci' && PROFILE !== 'full') throw new Error(`PROFILE must be ci or full, got ${PROFILE}`)
  const bin = k6Binary()
  const version = k6Version(bin)
  const started = new Date()
  const loadAvg = loadavg().map((l) => l.toFixed(2)).join(' ')
  const stamp = started.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
  RESULTS_DIR = makeRunFolder(`${stamp}-${tcs.length === 1 ? tcs[0] : tcs.length === Object.keys(TCS).length ? 'all' : `${tcs.length}tcs`}`)
  console.log(`load: ${tcs.length} TC(s), PROFILE=${PROFILE}, ${version}; results in ${RESULTS_DIR}/`)

  const stack = EXTERNAL ? externalStack() : await startOwnStack()
  let prometheus
  if (process.env.PROMETHEUS_URL) {
    const url = process.env.PROMETHEUS_URL.replace(/\/$/, '')
    prometheus = { url, remoteWriteUrl: `${url}/api/v1/write` }
  } else {
    prometheus = await startPrometheus({ jobs: stack.scrapeTargets ?? { gateway: [new URL(stack.vars.BASE_URL).host] } })
    cleanups.push(() => prometheus.stop())
  }
  console.log(`load: ${stack.describe}; prometheus ${prometheus.url}`)
  const dashboardPort = await freePort()
  console.log(`load: k6 web dashboard, live while each TC runs: http://127.0.0.1:${dashboardPort}`)

  const rows = []
  for (const tc of tcs) {
    if (interrupted) break
    console.log(`▶ ${tc}: ${TCS[tc].about}`)
    const row = await runTc(tc, stack, prometheus, stamp, dashboardPort)
    rows.push(row)
    console.log(`  ${row.passed ? 'pass' : 'FAIL'} in ${row.seconds.toFixed(1)} s${row.reasons.length ? `: ${row.reasons.join('; ')}` : ''}`)
    for (const line of row.info) console.log(`  ${line}`)
  }
  const totalS = (Date.now() - started.getTime()) / 1000
  console.log(`\n${textTable(rows)}\n\n${rows.filter((r) => r.passed).length}/${rows.length} passed in ${totalS.toFixed(0)} s (PROFILE=${PROFILE}); per TC: ${RESULTS_DIR}/<tc>.json, .html, .log, .audit.jsonl; the table: ${RESULTS_DIR}/load-run.json`)
  const promCheck = (await checkPrometheus(prometheus, rows)).replace(prometheus.url, 'the run\'s Prometheus')
  console.log(promCheck.replace(/`/g, ''))
  writeFileSync(resolve(ROOT, RESULTS_DIR, 'load-run.json'), JSON.stringify({ started, profile: PROFILE, loadAvg, totalS, rows }, null, 2))
  if (report) {
    const command = `PROFILE=${PROFILE} npm run load -- ${process.argv.slice(2).join(' ')}`
    const screenshot = await screenshotDashboard(rows, join(report, '..'))
    writeReport(report, { rows, started, loadAvg, totalS, command, stackDescription: stack.describe.replace(/:\d+/g, ':<port>'), promCheck, screenshot })
  }
  const code = rows.every((r) => r.passed) ? 0 : 1
  if (keep && !interrupted) await keepUp(stack, prometheus, rows)
  return code
}

/** results/load/<name>/ (a "-2", "-3" … suffix if that second already has one) and results/load/latest → it. */
function makeRunFolder (name) {
  const parent = resolve(ROOT, RESULTS_PARENT)
  mkdirSync(parent, { recursive: true })
  let dir
  for (let n = 1; !dir; n++) {
    const candidate = join(parent, n === 1 ? name : `${name}-${n}`)
    try { mkdirSync(candidate); dir = candidate } catch (err) { if (err.code !== 'EEXIST') throw err }
  }
  const latest = join(parent, 'latest')
  rmSync(latest, { force: true })
  try { symlinkSync(relative(parent, dir), latest) } catch {} // a convenience only: a file system without symlinks is fine
  return dir.startsWith(ROOT + sep) ? relative(ROOT, dir) : dir
}

/** --keep: the stack stays up, with what to look at, until Ctrl-C or SIGTERM. */
async function keepUp (stack, prometheus, rows) {
  // A fresh gateway with the last TC's settings (tc-audit-001 stops its own), auditing into a file of its own.
  const keepAudit = join(RESULTS_DIR, 'keep.audit.jsonl')
  await stack.restartGateway?.({ ...stack.lastGatewayEnv(), AUDIT_LOG_PATH: resolve(ROOT, keepAudit) })
  const query = `sum by (testid) (rate(k6_http_reqs_total{testid=~"${rows.map((r) => r.testid).join('|')}"}[30s]))`
  const graph = `${prometheus.url}/graph?g0.expr=${encodeURIComponent(query)}&g0.tab=0&g0.range_input=15m`
  const urls = { ...stack.urls, prometheus: graph }
  const width = Math.max(...Object.keys(urls).map((k) => k.length))
  console.log(`\nload: --keep: the stack stays up until Ctrl-C (the gateway with the last TC's settings, audit log ${keepAudit})`)
  for (const [what, url] of Object.entries(urls)) console.log(`  ${what.padEnd(width)}  ${url}`)
  for (const r of rows) {
    const html = join(RESULTS_DIR, `${r.tc}.html`)
    if (existsSync(resolve(ROOT, html))) console.log(`  ${`${r.tc}`.padEnd(width)}  file://${resolve(ROOT, html)}`)
  }
  await new Promise((resolve) => { keeping = resolve })
}

let code = 1
try {
  code = await main()
} catch (err) {
  console.error(`load: ${err.stack ?? err.message}`)
} finally {
  await teardown()
}
process.exit(code)
