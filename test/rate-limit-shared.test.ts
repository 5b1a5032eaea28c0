// Two gateway processes (dist/, run `npm run build` first) on one real Redis share one limit and one bucket exactly.
import t from 'tap'
import { gatewayProcessFor, redisFor, sample } from './helper.js'

type Gateway = Awaited<ReturnType<typeof gatewayProcessFor>>

async function get (gateway: Gateway, path: string) {
  const res = await fetch(`${gateway.url}${path}`)
  return { status: res.status, headers: res.headers, body: await res.json() }
}

async function post (gateway: Gateway, path: string, body: unknown) {
  const res = await fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, headers: res.headers, body: await res.json() }
}

t.test('2 × 300 concurrent requests for one key at limit 100: exactly 100 admitted', async (t) => {
  const redis = await redisFor(t)
  // A generous command timeout: on a loaded CI box a reply late by 500 ms would fail over to the local fallback
  // (by design) and admit extra requests; exactness is what this test is about, the outage test covers timeouts.
  const env = { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '5000', RATE_LIMIT_MAX: '100', RATE_LIMIT_WINDOW_MS: '60000', RATE_LIMIT_IP_MAX: '1000000' } // the per-user layer alone: the address layer has test/security/address-ceiling
  const gateways = await Promise.all([gatewayProcessFor(t, env), gatewayProcessFor(t, env)])

  // Every request comes from 127.0.0.1 without a token, so all 600 count against the one key ip:127.0.0.1.
  const results = await Promise.all(gateways.flatMap((gateway) => Array.from({ length: 300 }, () => get(gateway, '/api/quota/shared'))))
  const admitted = results.filter((r) => r.status === 200)
  const refused = results.filter((r) => r.status === 429)
  t.equal(admitted.length, 100, 'exactly the limit admitted across both processes')
  t.equal(refused.length, 500, 'every other request refused, none failed')
  t.same(admitted.map((r) => Number(r.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i),
    'each admission saw its own count: Remaining runs 0..99 with no repeats')
  const retryAfter = refused[0].headers.get('retry-after')
  t.same(refused[0].body, { statusCode: 429, error: 'Too Many Requests', message: `Rate limit exceeded; retry in ${retryAfter} seconds`, code: 'GW_RATE_LIMITED' })
  t.ok(refused.every((r) => r.headers.get('x-ratelimit-limit') === '100' && r.headers.get('x-ratelimit-remaining') === '0'), 'every 429 says limit 100, remaining 0')
  t.ok(refused.every((r) => Number(r.headers.get('retry-after')) > 0 && Number(r.headers.get('retry-after')) <= 60), 'every Retry-After within the window')

  const refusedPerProcess = await Promise.all(gateways.map(async (gateway) => {
    const res = await fetch(`${gateway.url}/metrics`)
    t.equal(res.status, 200, '/metrics is not limited')
    const text = await res.text()
    t.equal(sample(text, 'gateway_redis_degradation_events_total', { event: 'degraded' }), 0, 'Redis never failed over, so no local fallback admitted anything')
    return sample(text, 'gateway_rate_limited_total', { limiter: 'global' })
  }))
  t.equal(refusedPerProcess[0] + refusedPerProcess[1], 500, `the processes counted 500 refusals between them (${refusedPerProcess.join(' + ')})`)

  const after = await Promise.all(gateways.map((gateway) => get(gateway, '/api/quota/shared')))
  t.same(after.map((r) => r.status), [429, 429], 'both processes keep refusing the key')
})

t.test('token bucket across 2 processes: never more spent than capacity + refill over the interval', async (t) => {
  const redis = await redisFor(t)
  const capacity = 100
  const refillPerSecond = 2
  const env = {
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: '5000',
    RATE_LIMIT_MAX: '100000',
    AGENT_QUOTA_CAPACITY: String(capacity),
    AGENT_QUOTA_MAX_PARALLEL: '1000', // concurrent requests of one agent: its bucket decides, not the in-flight cap
    AGENT_QUOTA_REFILL_PER_SECOND: String(refillPerSecond),
    AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '5'
  }
  const gateways = await Promise.all([gatewayProcessFor(t, env), gatewayProcessFor(t, env)])

  // Three waves of 2 × 100 requests costing 1..5 tokens each: demand (~1800 tokens) is far above supply.
  const costs = Array.from({ length: 600 }, (_, i) => (i * 7) % 5 + 1)
  const started = performance.now()
  const results = []
  for (let wave = 0; wave < 3; wave++) {
    const batch = costs.slice(wave * 200, (wave + 1) * 200)
    results.push(...await Promise.all(batch.map((tokens, i) =>
      post(gateways[i % 2], '/api/request', { agentId: 'agent_shared', tokens }).then((r) => ({ ...r, tokens })))))
  }
  const intervalSeconds = (performance.now() - started) / 1000

  t.same([...new Set(results.map((r) => r.status))].sort(), [200, 429], 'only admissions and refusals')
  const spent = results.filter((r) => r.status === 200).reduce((sum, r) => sum + r.tokens, 0)
  const bound = capacity + refillPerSecond * intervalSeconds
  t.ok(spent <= bound, `spent ${spent} tokens ≤ capacity ${capacity} + ${refillPerSecond}/s × ${intervalSeconds.toFixed(3)} s = ${bound.toFixed(1)}`)
  t.ok(spent >= capacity - 4, `the bucket was drained (spent ${spent}), so the bound was actually under test`)
  t.ok(results.filter((r) => r.status === 200).every((r) => r.body.remaining >= 0 && r.body.remaining < capacity), 'no admission reports a negative or over-full bucket')
  const refusal = results.find((r) => r.status === 429)!
  t.equal(refusal.body.code, 'GW_QUOTA_EXCEEDED')
  t.ok(Number(refusal.headers.get('retry-after')) >= 1, 'a refusal carries Retry-After')

  // Both processes read the one bucket: their views agree (up to refill between the two reads).
  const views = await Promise.all(gateways.map((gateway) => get(gateway, '/api/quota/agent_shared')))
  t.ok(Math.abs(views[0].body.remaining - views[1].body.remaining) <= 1, `both processes see the same bucket (${views[0].body.remaining}, ${views[1].body.remaining})`)
})
