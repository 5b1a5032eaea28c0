import t from 'tap'
import { Pool } from 'undici'
import { gatewayProcessFor, redisFor, sample, stubsFor, waitFor } from '../helper.js'
import { jsonLines, waitForWorkers } from './workers-helper.js'

// Two workers on one Redis behave as one gateway: one limit, one /metrics answer, one access line per request.
t.test('2 workers on one Redis: exact limits, exact summed /metrics counters, one access line per request', async (t) => {
  const redis = await redisFor(t)
  const stubs = await stubsFor(t, {}, []) // the demo route calls no upstream
  const MAX = 25
  const gateway = await gatewayProcessFor(t, {
    ...stubs.gatewayEnv,
    REDIS_URL: redis.url,
    GATEWAY_WORKERS: '2',
    LOG_LEVEL: 'info',
    RATE_LIMIT_DEMO_MAX: String(MAX),
    RATE_LIMIT_DEMO_WINDOW_MS: '600000',
    AUDIT_LOG_PATH: '/dev/null'
  }, { output: 'capture', timeoutMs: 60_000 })
  await waitForWorkers(gateway.process.pid!, 2)

  // 400 requests on 32 connections: the primary hands connections to both workers.
  const N = 400
  const pool = new Pool(gateway.url, { connections: 32, pipelining: 1 })
  t.teardown(() => pool.destroy())
  const statuses = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const res = await pool.request({ method: 'GET', path: '/api/test-rate-limit', headers: { 'x-request-id': `ex-${i}` } })
    await res.body.dump()
    return res.statusCode
  }))
  const ok = statuses.filter((s) => s === 200).length
  const limited = statuses.filter((s) => s === 429).length
  t.equal(ok, MAX, `exactly ${MAX} admitted across both workers`)
  t.equal(limited, N - MAX, 'every other request refused with 429')

  // Access lines are written asynchronously: wait until each answered request has its line.
  const accessLines = () => jsonLines(gateway.output()).filter((l) => l.msg === 'request' && String(l.reqId).startsWith('ex-'))
  await waitFor(() => accessLines().length >= N, { timeoutMs: 10_000, what: `${N} access lines` })
  const lines = accessLines()
  const perReq = new Map<string, number>()
  for (const line of lines) perReq.set(String(line.reqId), (perReq.get(String(line.reqId)) ?? 0) + 1)
  t.equal(perReq.size, N, 'every request has an access line')
  t.same([...perReq].filter(([, n]) => n > 1), [], 'no request has two access lines')
  const pids = new Set(lines.map((l) => l.pid))
  t.equal(pids.size, 2, 'both workers served requests')
  const otherInfo = jsonLines(gateway.output()).filter((l) => String(l.reqId ?? '').startsWith('ex-') && l.msg !== 'request' && (l.level as number) <= 30)
  t.same(otherInfo.slice(0, 3), [], 'no other info line for these requests')
  t.match(lines[0], { method: 'GET', route: '/api/test-rate-limit', status: Number, ms: Number })

  // One /metrics answer sums both workers, whichever one serves it; asked several times to hit both.
  for (let i = 0; i < 4; i++) {
    const text = await (await fetch(`${gateway.url}/metrics`)).text()
    t.equal(sample(text, 'gateway_rate_limited_total', { limiter: 'demo' }), N - MAX, 'gateway_rate_limited_total{limiter="demo"} sums both workers exactly')
    t.equal(sample(text, 'gateway_audit_events_total', { type: 'rate_limit_exceeded' }), N - MAX, 'gateway_audit_events_total counts every denial')
    t.equal(sample(text, 'http_request_duration_seconds_count', { route: '/api/test-rate-limit' }), N, 'the route histogram counts every request')
    t.equal(sample(text, 'gateway_breaker_state', { upstream: 'user' }), 0, 'a gauge is aggregated, not doubled (max)')
  }
})
