import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createTokenSigner } from '../src/lib/jwt.js'
import type { Gateway } from '../src/app.js'
import { build, JWT_SECRET, redisFor, sample, waitFor } from './helper.js'

const sign = createTokenSigner(JWT_SECRET, 3600)
const bearer = (userId: string) => ({ authorization: `Bearer ${sign(userId)}` })
/** The "offline queue trap" bound: with Redis dead, no request may wait longer than this for the limiter. */
const OUTAGE_BOUND_MS = 2000

/** The demo route: limited (its own limit, keyed by IP) and needing nothing but the limiter. */
async function timed (app: Gateway, ip: string) {
  const started = performance.now()
  const res = await app.inject({ method: 'GET', url: '/api/test-rate-limit', remoteAddress: ip })
  return { status: res.statusCode, ms: performance.now() - started, res }
}

/** A globally limited route keyed by user; the quota behind it needs Redis too. */
const quotaOf = (app: Gateway, userId: string) => app.inject({ method: 'GET', url: '/api/quota/outage', headers: bearer(userId) })
const demoKey = (ip: string) => `gw:rl:GET/api/test-rate-limit-demo:${ip}`

const metricsOf = async (app: Gateway) => (await app.inject({ method: 'GET', url: '/metrics' })).body

function auditFile (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-audit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.jsonl')
  return { path, events: () => { try { return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)) } catch { return [] } } }
}

/** Reads one key with a client of the test's own, to see what the gateway wrote into Redis. */
async function redisGet (url: string, key: string) {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    return await client.get(key)
  } finally { client.disconnect() }
}

/** Polls a limited route from fresh IPs (so the probes are never limited themselves) until the limiter is on Redis again. */
async function waitForRecovery (app: Gateway, what: string) {
  let probe = 0
  return waitFor(async () => {
    probe++
    const res = await app.inject({ method: 'GET', url: '/api/test-rate-limit', remoteAddress: `10.${probe >> 8 & 255}.${probe & 255}.1` })
    if (res.statusCode >= 500 && res.statusCode !== 503) throw new Error(`probe answered ${res.statusCode}`)
    return sample(await metricsOf(app), 'gateway_redis_degraded') === 0 && res.statusCode === 200
  }, { timeoutMs: 10_000, intervalMs: 50, what })
}

t.test('fail-open: Redis SIGKILLed mid-run, the in-memory fallback takes over within a bound, Redis takes back over after restart', async (t) => {
  const redis = await redisFor(t)
  const audit = auditFile(t)
  const app = await build(t, {
    REDIS_URL: redis.url,
    RATE_LIMIT_MAX: '5',
    RATE_LIMIT_WINDOW_MS: '60000',
    RATE_LIMIT_DEMO_MAX: '5',
    RATE_LIMIT_DEMO_WINDOW_MS: '60000',
    AUDIT_LOG_PATH: audit.path
  })

  const before = await timed(app, '10.0.0.1')
  t.equal(before.status, 200)
  t.equal(before.res.headers['x-ratelimit-remaining'], '4')
  t.equal(await redisGet(redis.url, demoKey('10.0.0.1')), '1', 'the count lives in Redis')

  await redis.kill('SIGKILL')
  const killedAt = performance.now()

  // A burst right after the kill, then a steady stream: none may hang on the dead connection.
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => timed(app, `10.1.0.${i + 1}`)))
  const firstSuccessMs = performance.now() - killedAt
  const stream = []
  for (let i = 0; i < 7; i++) stream.push(await timed(app, '10.2.0.1'))
  const during = [...burst, ...stream]
  const slowest = Math.max(...during.map((r) => r.ms))

  t.same(burst.map((r) => r.status), burst.map(() => 200), 'the burst is admitted by the fallback limiter')
  t.ok(slowest < OUTAGE_BOUND_MS, `every request during the outage completed in < ${OUTAGE_BOUND_MS} ms (slowest ${slowest.toFixed(0)} ms)`)
  t.ok(firstSuccessMs < OUTAGE_BOUND_MS, `from Redis death to admitted limited requests: ${firstSuccessMs.toFixed(0)} ms`)
  t.notOk(during.some((r) => r.status >= 500), 'no 5xx from the limiter')
  t.same(stream.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429], 'the fallback still enforces the limit per instance')
  t.same(stream.map((r) => r.res.headers['x-ratelimit-remaining']), ['4', '3', '2', '1', '0', '0', '0'], 'fallback headers count down as usual')
  t.same(stream[5].res.json(), { statusCode: 429, error: 'Too Many Requests', message: `Rate limit exceeded; retry in ${stream[5].res.headers['retry-after']} seconds`, code: 'GW_RATE_LIMITED' })

  // The global limiter falls back the same way. The agent quota behind it never grants from a bucket it cannot
  // read (by design, even when the limiter fails open), so admitted requests get the quota's own 503.
  const global = []
  for (let i = 0; i < 6; i++) global.push(await quotaOf(app, 'bob'))
  t.same(global.map((r) => r.statusCode), [503, 503, 503, 503, 503, 429], 'global fallback admits 5, then limits')
  t.same(global.map((r) => r.headers['x-ratelimit-remaining']), ['4', '3', '2', '1', '0', '0'], 'the limiter admitted the first five')
  t.equal(global[0].headers['retry-after'], '1')
  t.same(global[0].json(), { statusCode: 503, error: 'Service Unavailable', message: 'The rate-limit store is unreachable and the gateway fails closed; retry later', code: 'GW_RATE_LIMIT_UNAVAILABLE' })

  const outage = await metricsOf(app)
  t.equal(sample(outage, 'gateway_redis_degradation_events_total', { event: 'degraded' }), 1, 'one degradation counted (not one per request)')
  t.equal(sample(outage, 'gateway_redis_degraded'), 1, 'the gauge says degraded')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, '/health answers during the outage')

  await redis.start()
  const restartedAt = performance.now()
  await waitForRecovery(app, 'the limiter to use Redis again')
  const recoveryMs = performance.now() - restartedAt
  t.ok(recoveryMs < 5000, `back on Redis ${recoveryMs.toFixed(0)} ms after the restart, without restarting the gateway`)

  // Enforced in Redis again: the counts are in the new (empty) Redis, and the limits bite at 5.
  const carol = []
  for (let i = 0; i < 6; i++) carol.push((await timed(app, '10.3.0.1')).status)
  t.same(carol, [200, 200, 200, 200, 200, 429])
  t.equal(await redisGet(redis.url, demoKey('10.3.0.1')), '6', 'counted in Redis, not in the fallback')
  const dave = []
  for (let i = 0; i < 6; i++) dave.push((await quotaOf(app, 'dave')).statusCode)
  t.same(dave, [200, 200, 200, 200, 200, 429], 'the global limit and the quota work again')
  t.equal(await redisGet(redis.url, 'gw:rl:u:dave'), '6')
  const after = await metricsOf(app)
  t.equal(sample(after, 'gateway_redis_degradation_events_total', { event: 'recovered' }), 1)
  t.equal(sample(after, 'gateway_redis_degraded'), 0)

  const events = await waitFor(() => {
    const found = audit.events().filter((e) => e.type === 'redis_degraded' || e.type === 'redis_recovered')
    return found.length >= 2 && found
  }, { timeoutMs: 5000, what: 'the degradation and recovery in the audit log' })
  t.same(events.map((e) => [e.type, e.outcome]), [['redis_degraded', 'failure'], ['redis_recovered', 'recovered']])
  t.match(events[0].detail, /failing open$/)
})

t.test('fail-closed: 503 GW_RATE_LIMIT_UNAVAILABLE with Retry-After while Redis is dead, limits again after restart', async (t) => {
  const redis = await redisFor(t)
  const app = await build(t, { REDIS_URL: redis.url, RATE_LIMIT_DEMO_MAX: '3', RATE_LIMIT_DEMO_WINDOW_MS: '60000', RATE_LIMIT_ON_REDIS_ERROR: 'closed' })
  t.equal((await timed(app, '10.0.0.1')).status, 200)

  await redis.kill('SIGKILL')
  const during = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(app, `10.0.1.${i + 1}`)))
  const slowest = Math.max(...during.map((r) => r.ms))
  t.ok(slowest < OUTAGE_BOUND_MS, `refused within the bound (slowest ${slowest.toFixed(0)} ms)`)
  t.same(during.map((r) => r.status), during.map(() => 503), 'every limited request is refused')
  t.same(during[0].res.json(), {
    statusCode: 503,
    error: 'Service Unavailable',
    message: 'The rate-limit store is unreachable and the gateway fails closed; retry later',
    code: 'GW_RATE_LIMIT_UNAVAILABLE'
  })
  t.ok(during.every((r) => r.res.headers['retry-after'] === '1'), 'every 503 carries Retry-After')
  const global = await quotaOf(app, 'erin')
  t.same([global.statusCode, global.json().code, global.headers['x-ratelimit-limit']], [503, 'GW_RATE_LIMIT_UNAVAILABLE', undefined], 'the global limiter refuses before the route runs')
  t.same([(await app.inject({ method: 'GET', url: '/health' })).statusCode, (await app.inject({ method: 'GET', url: '/metrics' })).statusCode], [200, 200], 'exempt routes still answer')
  t.equal(sample(await metricsOf(app), 'gateway_redis_degradation_events_total', { event: 'degraded' }), 1)

  await redis.start()
  await waitForRecovery(app, 'the limiter to use Redis again')
  const after = []
  for (let i = 0; i < 4; i++) after.push((await timed(app, '10.5.0.1')).status)
  t.same(after, [200, 200, 200, 429], 'limits enforced again without restarting the gateway')
  t.equal(await redisGet(redis.url, demoKey('10.5.0.1')), '4')
  t.equal((await quotaOf(app, 'erin')).statusCode, 200)
})

t.test('fail-open: Redis frozen (SIGSTOP, sockets stay open): requests bounded by the command timeout, back after SIGCONT', async (t) => {
  const redis = await redisFor(t)
  t.teardown(() => { redis.process?.kill('SIGCONT') })
  const app = await build(t, { REDIS_URL: redis.url, RATE_LIMIT_DEMO_MAX: '5', RATE_LIMIT_DEMO_WINDOW_MS: '60000', REDIS_COMMAND_TIMEOUT_MS: '300' })
  t.equal((await timed(app, '10.0.0.1')).status, 200)

  redis.process!.kill('SIGSTOP')
  const stream = []
  for (let i = 0; i < 20; i++) stream.push(await timed(app, '10.2.0.1'))
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => timed(app, `10.1.0.${i + 1}`)))
  const during = [...stream, ...burst]
  const slowest = Math.max(...during.map((r) => r.ms))
  const median = during.map((r) => r.ms).sort((a, b) => a - b)[Math.floor(during.length / 2)]
  t.ok(slowest < OUTAGE_BOUND_MS, `every request completed in < ${OUTAGE_BOUND_MS} ms (slowest ${slowest.toFixed(0)} ms)`)
  t.notOk(during.some((r) => r.status >= 500), 'no 5xx from the limiter')
  t.same(stream.map((r) => r.status), [...Array(5).fill(200), ...Array(15).fill(429)], 'the fallback enforces the limit')
  // Only the occasional probe waits out the 300 ms command timeout; the rest go straight to the fallback.
  t.ok(median < 100, `a frozen Redis does not cost every request the command timeout (median ${median.toFixed(0)} ms)`)

  redis.process!.kill('SIGCONT')
  await waitForRecovery(app, 'the limiter to use Redis again after SIGCONT')
  const after = []
  for (let i = 0; i < 6; i++) after.push((await timed(app, '10.3.0.1')).status)
  t.same(after, [200, 200, 200, 200, 200, 429])
  t.equal(await redisGet(redis.url, demoKey('10.3.0.1')), '6', 'counted in Redis again')
})
