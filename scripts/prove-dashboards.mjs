// `npm run prove:dashboards`: proves both Grafana dashboards against real data. Starts Redis, the three stubs and a
// gateway (Redis mode) on free loopback ports, a real Prometheus scraping them with the jobs and interval of
// prometheus/prometheus.yml (targets mapped from service names to the local processes) and the remote-write receiver
// on, runs scripts/k6/dashboard-traffic.js with `-o experimental-prometheus-rw`, then evaluates EVERY panel query of
// grafana/dashboards/*.json through Prometheus's HTTP API (template variables filled from label_values and
// regex-escaped as Grafana does, Grafana's $__ variables replaced). Prints each query's series count and largest
// value; exits 1 if a query errors or returns no series. Bounded (< 3 min, ~45 s); tears everything down.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import YAML from 'yaml'
import { ROOT, freePort, startGateway, startRedis, startStubs, waitFor } from './lib/stack.mjs'
import { startPrometheus } from './lib/prometheus.mjs'
import { k6Version, runK6 } from './lib/k6.mjs'

const TIME_LIMIT_MS = 170_000
const K6_DURATION_S = 20
const DASHBOARDS = join(ROOT, 'grafana', 'dashboards')

const log = (msg) => console.error(`prove-dashboards: ${msg}`)
const cleanups = []
const teardown = async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err) => log(`teardown: ${err.message}`))
}

/** The compose Prometheus config, with each `service:port` target replaced by the local process playing it. */
function jobsFromComposeConfig (localTargets) {
  const config = YAML.parse(readFileSync(join(ROOT, 'prometheus', 'prometheus.yml'), 'utf8'))
  const jobs = {}
  for (const job of config.scrape_configs) {
    jobs[job.job_name] = job.static_configs.flatMap((c) => c.targets).map((target) => {
      const local = localTargets[target.split(':')[0]]
      if (!local) throw new Error(`prometheus/prometheus.yml scrapes ${target}, which this script does not start`)
      return local
    })
  }
  return { jobs, scrapeIntervalS: Number.parseInt(config.global?.scrape_interval ?? '5s', 10) }
}

async function prom (url, path, params) {
  const res = await fetch(`${url}${path}?${new URLSearchParams(params)}`)
  const body = await res.json().catch(() => ({ status: 'error', error: `HTTP ${res.status}` }))
  if (body.status !== 'success') throw new Error(body.error ?? `HTTP ${res.status}`)
  return body.data
}

/** Every panel (rows' nested panels included). */
const panelsOf = (dashboard) => dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])

/** `label_values(metric, label)` → the values Prometheus has for it over the run. */
async function variableValues (promUrl, query, range) {
  const match = /^label_values\((.+),\s*(\w+)\)$/.exec(query.trim())
  if (!match) throw new Error(`unsupported variable query "${query}"`)
  const series = await prom(promUrl, '/api/v1/series', { 'match[]': match[1], start: range.start, end: range.end })
  return [...new Set(series.map((s) => s[match[2]]).filter(Boolean))].sort()
}

/** Grafana's escaping of a variable value inside a Prometheus regex matcher (`=~"$var"`). */
const regexEscape = (value) => value.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&')

function substitute (expr, values) {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a, b, c) => {
    const name = a ?? b ?? c
    if (!(name in values)) throw new Error(`unknown variable ${whole}`)
    return values[name]
  })
}

async function main () {
  const startedAt = Date.now()
  log(k6Version())
  const secret = randomBytes(24).toString('hex')
  const work = mkdtempSync(join(tmpdir(), 'gw-prove-'))
  cleanups.push(async () => rmSync(work, { recursive: true, force: true }))

  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const stubs = await startStubs({ JWT_SECRET: secret, REDIS_URL: redis.url, STUB_FAULTS: '1' })
  cleanups.push(() => stubs.stop())
  const gateway = await startGateway({
    ...stubs.gatewayEnv,
    JWT_SECRET: secret,
    REDIS_URL: redis.url,
    AUDIT_LOG_PATH: join(work, 'audit.log'),
    AGENT_AUTH: 'open', // its agent traffic carries no keys (issue 13)
    BREAKER_FAILURE_THRESHOLD: '3',
    // Open for longer than a scrape interval, so the breaker-state panel sees 2 (open), not only the transition.
    BREAKER_RESET_TIMEOUT_MS: '8000',
    BREAKER_SUCCESS_THRESHOLD: '1',
    RATE_LIMIT_DEMO_MAX: '3',
    RATE_LIMIT_DEMO_WINDOW_MS: '5000',
    AGENT_QUOTA_CAPACITY: '60',
    AGENT_QUOTA_REFILL_PER_SECOND: '10'
  })
  cleanups.push(() => gateway.stop())

  const promPort = await freePort()
  const host = (url) => new URL(url).host
  const { jobs, scrapeIntervalS } = jobsFromComposeConfig({
    gateway: host(gateway.url), auth: host(stubs.auth.url), user: host(stubs.user.url), order: host(stubs.order.url), model: host(stubs.model.url), localhost: `127.0.0.1:${promPort}`
  })
  const prometheus = await startPrometheus({ jobs, scrapeIntervalS, port: promPort })
  cleanups.push(() => prometheus.stop())
  const targetCount = Object.values(jobs).flat().length
  log(`gateway ${gateway.url}, stubs ${[stubs.auth, stubs.user, stubs.order, stubs.model].map((s) => s.port).join('/')}, prometheus ${prometheus.url} (jobs ${Object.keys(jobs).join(', ')}, every ${scrapeIntervalS}s)`)
  await waitFor(async () => {
    const { activeTargets } = await prom(prometheus.url, '/api/v1/targets', { state: 'active' })
    const down = activeTargets.filter((t) => t.health !== 'up')
    if (activeTargets.length === targetCount && down.length === 0) return true
    throw new Error(down.map((t) => `${t.scrapeUrl} ${t.health} ${t.lastError}`).join('; ') || `${activeTargets.length} targets`)
  }, { timeoutMs: 30_000, intervalMs: 500, what: `all ${targetCount} scrape targets up` })

  const testid = `dashboards-${Date.now().toString(36)}`
  const started = Date.now()
  log(`k6 run scripts/k6/dashboard-traffic.js (${K6_DURATION_S}s, testid=${testid})`)
  const k6Log = join(work, 'k6.log')
  const k6 = runK6({
    script: 'scripts/k6/dashboard-traffic.js',
    vars: { BASE_URL: gateway.url, USER_ADMIN_URL: stubs.user.url, DURATION: `${K6_DURATION_S}s` },
    tags: { testid },
    outputs: ['experimental-prometheus-rw'],
    env: {
      K6_PROMETHEUS_RW_SERVER_URL: prometheus.remoteWriteUrl,
      K6_PROMETHEUS_RW_TREND_STATS: 'p(50),p(95),p(99),min,max',
      K6_PROMETHEUS_RW_PUSH_INTERVAL: '1s'
    },
    logFile: k6Log,
    timeoutMs: (K6_DURATION_S + 40) * 1000
  })
  cleanups.push(async () => k6.stop())
  const run = await k6.promise
  if (run.code !== 0) throw new Error(`k6 exited ${run.code ?? run.signal}${run.timedOut ? ' (timed out)' : ''}:\n${readFileSync(k6Log, 'utf8').slice(-4000)}`)
  const k6Ended = Date.now()

  // One more scrape after the run, so the gateway's final counts are in Prometheus too.
  await waitFor(async () => {
    const { result: stamps } = await prom(prometheus.url, '/api/v1/query', { query: 'timestamp(up{job="gateway"})' })
    if (stamps.length > 0 && Number(stamps[0].value[1]) * 1000 > k6Ended) return true
    throw new Error(`last gateway scrape at ${stamps[0]?.value[1]}, k6 ended at ${k6Ended / 1000}`)
  }, { timeoutMs: 4 * scrapeIntervalS * 1000, intervalMs: 250, what: 'a scrape after the k6 run' })

  const range = { start: (started - 10_000) / 1000, end: Date.now() / 1000 }
  const rangeS = Math.ceil(range.end - range.start)
  // What Grafana would put there: $__rate_interval = max(4 × scrape interval, step + scrape interval).
  const step = scrapeIntervalS
  const builtins = { __rate_interval: `${4 * scrapeIntervalS}s`, __interval: `${step}s`, __range: `${rangeS}s`, __range_s: String(rangeS) }

  const rows = []
  const failures = []
  for (const file of readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json')).sort()) {
    const dashboard = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8'))
    const values = { ...builtins }
    for (const variable of dashboard.templating?.list ?? []) {
      if (variable.type !== 'query') throw new Error(`${file}: variable ${variable.name} of type ${variable.type} is not supported`)
      const query = typeof variable.query === 'string' ? variable.query : variable.query.query
      const found = await variableValues(prometheus.url, query, range)
      if (found.length === 0) {
        failures.push(`${file}: variable $${variable.name} (${query}) has no values`)
        values[variable.name] = '.*'
      } else if (variable.name === 'testid') {
        if (!found.includes(testid)) failures.push(`${file}: variable $testid does not offer this run's ${testid} (${found.join(', ')})`)
        values[variable.name] = testid
      } else {
        values[variable.name] = found.length === 1 ? regexEscape(found[0]) : `(${found.map(regexEscape).join('|')})`
      }
      rows.push({ dashboard: dashboard.uid, panel: `variable $${variable.name}`, query, series: found.length })
    }
    const evaluated = await Promise.all(panelsOf(dashboard).flatMap((panel) => (panel.targets ?? []).map(async (target) => {
      const row = { dashboard: dashboard.uid, panel: panel.title, query: target.refId, series: 0, max: '' }
      try {
        const expr = substitute(target.expr, values)
        const { result } = await prom(prometheus.url, '/api/v1/query_range', { query: expr, start: range.start, end: range.end, step })
        row.series = result.length
        // The largest value seen, to tell real traffic from series that only ever held their initial 0.
        const peak = Math.max(...result.flatMap((s) => s.values.map(([, v]) => Number(v))).filter(Number.isFinite))
        row.max = Number.isFinite(peak) ? Number(peak.toPrecision(3)) : 'NaN'
        if (result.length === 0) failures.push(`${dashboard.uid} / ${panel.title} / ${target.refId}: no series for ${expr}`)
      } catch (err) {
        row.series = 'ERROR'
        failures.push(`${dashboard.uid} / ${panel.title} / ${target.refId}: ${err.message}`)
      }
      return row
    })))
    rows.push(...evaluated)
  }

  const width = Math.max(...rows.map((r) => `${r.dashboard} / ${r.panel} [${r.query}]`.length))
  console.log(`${'panel query'.padEnd(width)}  series  max value`)
  console.log(`${'-'.repeat(width)}  ------  ---------`)
  for (const r of rows) console.log(`${`${r.dashboard} / ${r.panel} [${r.query}]`.padEnd(width)}  ${String(r.series).padStart(6)}  ${r.max ?? ''}`)
  const queries = rows.filter((r) => !r.panel.startsWith('variable ')).length
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1)
  console.log(`\n${queries} panel queries and ${rows.length - queries} variables evaluated over ${rangeS}s of data (testid ${testid}) in ${seconds}s; ${failures.length} failed`)
  if (failures.length > 0) {
    for (const failure of failures) console.error(`FAIL ${failure}`)
    return 1
  }
  return 0
}

const timer = setTimeout(async () => {
  log(`timed out after ${TIME_LIMIT_MS / 1000}s`)
  await teardown()
  process.exit(1)
}, TIME_LIMIT_MS)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    log(`${signal}: tearing down`)
    await teardown()
    process.exit(1)
  })
}

let code = 1
try {
  code = await main()
} catch (err) {
  log(`FAILED: ${err.stack ?? err.message}`)
} finally {
  await teardown()
  clearTimeout(timer)
}
process.exit(code)
