import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Pool } from 'undici'
import metrics from '../plugins/metrics.js'
import auditLog from '../plugins/audit-log.js'
import { gatewayProcessFor, redisFor, sample, stubsFor, waitFor } from './helper.js'

interface Line { type: string, reqId: string | null, detail: string | null, agentId: string | null, count: number }

function tempLog (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-audit-agg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'audit.log')
}
const read = (path: string): Line[] => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line)
/** Denials per base type and subject: the sum of `count` over single lines and `_summary` lines. */
function sums (lines: Line[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of lines) {
    const key = `${line.type.replace(/_summary$/, '')}|${line.agentId ?? line.detail}`
    out.set(key, (out.get(key) ?? 0) + line.count)
  }
  return out
}

// Fails on the code before aggregation: it wrote one line per denial (N lines, no `count`).
t.test('N denials of a few keys over several intervals: counts add up to N, lines O(keys × intervals)', async (t) => {
  const path = tempLog(t)
  const app = Fastify({ logger: false })
  await app.register(metrics)
  await app.register(auditLog, { path, denialFlushMs: 50 })
  await app.ready()
  const N = 20_000
  const keys = ['global limit for u:a', 'global limit for u:b', 'demo limit for demo:1.2.3.4']
  const caused = new Map<string, number>()
  const started = Date.now()
  // Denials in 8 bursts with the flush timer running between them, plus quota denials of 2 agents.
  for (let burst = 0; burst < 8; burst++) {
    for (let i = 0; i < N / 8; i++) {
      app.audit({ type: 'rate_limit_exceeded', outcome: 'denied', detail: keys[i % keys.length] })
      caused.set(keys[i % keys.length], (caused.get(keys[i % keys.length]) ?? 0) + 1)
    }
    for (let i = 0; i < 100; i++) app.audit({ type: 'quota_exceeded', outcome: 'denied', agentId: `agent-${i % 2}`, detail: `asked ${i}, had 0` })
    await new Promise((resolve) => setTimeout(resolve, 60)) // lets the 50 ms flush timer run between bursts
  }
  app.audit({ type: 'login_failure', outcome: 'denied', detail: 'not aggregated' })
  const intervals = Math.ceil((Date.now() - started) / 50) + 2
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  await app.close()

  const lines = read(path)
  const total = sums(lines)
  t.equal([...total].filter(([k]) => k.startsWith('rate_limit_exceeded|')).reduce((a, [, n]) => a + n, 0), N, `rate_limit_exceeded counts add up to ${N}`)
  for (const key of keys) t.equal(total.get(`rate_limit_exceeded|${key}`), caused.get(key), `${key}: exact`)
  t.equal(total.get('quota_exceeded|agent-0'), 400, 'quota_exceeded of agent-0: exact')
  t.equal(total.get('quota_exceeded|agent-1'), 400, 'quota_exceeded of agent-1: exact')
  t.equal(total.get('login_failure|not aggregated'), 1, 'other events keep their own line')
  t.ok(lines.length <= 5 * intervals, `${lines.length} lines for ${N + 1601} events (≤ 5 keys × ${intervals} intervals)`)
  t.ok(lines.every((l) => l.type.endsWith('_summary') ? l.reqId === null && l.count >= 1 : l.count === 1), 'single lines count 1, summaries their sum')
  t.equal(sample(text, 'gateway_audit_events_total', { type: 'rate_limit_exceeded' }), N, 'gateway_audit_events_total counts every denial')
  t.equal(sample(text, 'gateway_audit_events_total', { type: 'quota_exceeded' }), 800, 'and every quota denial')
})

t.test('a flood through the gateway (Redis mode): one key far over its limit writes O(windows) lines, exact counts', async (t) => {
  const path = tempLog(t)
  const redis = await redisFor(t)
  const stubs = await stubsFor(t, {}, []) // the demo route calls no upstream
  const gateway = await gatewayProcessFor(t, {
    ...stubs.gatewayEnv,
    REDIS_URL: redis.url,
    AUDIT_LOG_PATH: path,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_DEMO_MAX: '5',
    RATE_LIMIT_DEMO_WINDOW_MS: '600000',
    AUDIT_DENIAL_FLUSH_MS: '200'
  })
  const pool = new Pool(gateway.url, { connections: 16 })
  t.teardown(() => pool.destroy())
  const N = 4000
  const statuses = await Promise.all(Array.from({ length: N }, async () => {
    const res = await pool.request({ method: 'GET', path: '/api/test-rate-limit' })
    await res.body.dump()
    return res.statusCode
  }))
  const denied = statuses.filter((s) => s === 429).length
  t.equal(denied, N - 5, 'all but 5 refused')
  const metricsText = await (await fetch(`${gateway.url}/metrics`)).text()
  t.equal(sample(metricsText, 'gateway_audit_events_total', { type: 'rate_limit_exceeded' }), denied, 'gateway_audit_events_total is exact')
  // The running gateway writes the summed counts every 200 ms: wait for them, then stop it (which flushes too).
  await waitFor(() => sums(read(path)).get('rate_limit_exceeded|demo limit for demo:127.0.0.1') === denied, { timeoutMs: 5000, what: 'the summed denials on disk' })
  await gateway.stop()
  const lines = read(path)
  t.equal(sums(lines).get('rate_limit_exceeded|demo limit for demo:127.0.0.1'), denied, `the audit counts add up to the ${denied} denials`)
  t.ok(lines.length < 100, `${lines.length} audit lines for ${denied} denials`)
})
