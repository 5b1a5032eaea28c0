import t, { type Test } from 'tap'
import { createRedisClient, waitForRedis } from '../src/lib/redis-client.js'
import type { Gateway } from '../src/app.js'
import { build, redisFor } from './helper.js'

const quotaExceeded = (agentId: string, tokens: number, seconds: number) => ({
  statusCode: 429,
  error: 'Too Many Requests',
  message: `Agent ${agentId} asked for ${tokens} tokens, more than its bucket holds now; retry in ${seconds} seconds`,
  code: 'GW_QUOTA_EXCEEDED'
})
const badRequest = (message: string) => ({ statusCode: 400, error: 'Bad Request', message, code: 'GW_BAD_REQUEST' })

const spend = (app: Gateway, agentId: string, tokens: number) =>
  app.inject({ method: 'POST', url: '/api/request', payload: { agentId, tokens } })
const quota = async (app: Gateway, agentId: string) => {
  const res = await app.inject({ method: 'GET', url: `/api/quota/${agentId}` })
  if (res.statusCode !== 200) throw new Error(`GET /api/quota/${agentId} answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** A gateway with a stepped quota clock, in memory or on a real Redis (the Lua script takes the injected clock). */
async function setup (t: Test, mode: 'embedded' | 'redis', env: Record<string, string>) {
  const clock = { now: 1_700_000_000_000 }
  const redis = mode === 'redis' ? await redisFor(t) : undefined
  const app = await build(t, { ...env, ...(redis ? { REDIS_URL: redis.url } : {}) }, { quotaClock: () => clock.now })
  return { app, clock, redis }
}

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`spend, refuse with an exact Retry-After, refill (${mode})`, async (t) => {
    const { app, clock } = await setup(t, mode, { AGENT_QUOTA_CAPACITY: '10', AGENT_QUOTA_REFILL_PER_SECOND: '2', AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '8' })

    t.same(await quota(app, 'agent_a'), { agentId: 'agent_a', tier: 'default', capacity: 10, remaining: 10, refillPerSecond: 2, fullInMs: 0 }, 'an unknown agent starts full')
    t.same((await spend(app, 'agent_a', 9)).json(), badRequest('body/tokens must be <= 8'), 'AGENT_QUOTA_MAX_TOKENS_PER_REQUEST caps one request')
    const first = await spend(app, 'agent_a', 7)
    t.equal(first.statusCode, 200)
    t.same(first.json(), { allowed: true, agentId: 'agent_a', spent: 7, remaining: 3, capacity: 10 })
    t.same((await spend(app, 'agent_a', 3)).json(), { allowed: true, agentId: 'agent_a', spent: 3, remaining: 0, capacity: 10 })
    t.same(await quota(app, 'agent_a'), { agentId: 'agent_a', tier: 'default', capacity: 10, remaining: 0, refillPerSecond: 2, fullInMs: 5000 })

    // 5 tokens at 2 per second are back in exactly 2500 ms: Retry-After rounds that up to 3 s.
    const refused = await spend(app, 'agent_a', 5)
    t.equal(refused.statusCode, 429)
    t.equal(refused.headers['retry-after'], '3')
    t.same(refused.json(), quotaExceeded('agent_a', 5, 3))
    t.same(await quota(app, 'agent_a'), { agentId: 'agent_a', tier: 'default', capacity: 10, remaining: 0, refillPerSecond: 2, fullInMs: 5000 }, 'a refusal spends nothing')

    clock.now += 2000
    const stillShort = await spend(app, 'agent_a', 5)
    t.equal(stillShort.statusCode, 429)
    t.equal(stillShort.headers['retry-after'], '1', '500 ms to go is announced as 1 s')
    t.same(stillShort.json(), quotaExceeded('agent_a', 5, 1))
    t.same(await quota(app, 'agent_a'), { agentId: 'agent_a', tier: 'default', capacity: 10, remaining: 4, refillPerSecond: 2, fullInMs: 3000 })

    clock.now += 499
    t.equal((await spend(app, 'agent_a', 5)).statusCode, 429, '1 ms before the announced instant: still short')
    clock.now += 1
    const admitted = await spend(app, 'agent_a', 5)
    t.equal(admitted.statusCode, 200, 'admitted at exactly 2500 ms')
    t.same(admitted.json(), { allowed: true, agentId: 'agent_a', spent: 5, remaining: 0, capacity: 10 })

    clock.now += 60_000
    t.same(await quota(app, 'agent_a'), { agentId: 'agent_a', tier: 'default', capacity: 10, remaining: 10, refillPerSecond: 2, fullInMs: 0 }, 'refill stops at capacity')
    t.same(await quota(app, 'agent_b'), { agentId: 'agent_b', tier: 'default', capacity: 10, remaining: 10, refillPerSecond: 2, fullInMs: 0 }, 'agents have their own buckets')

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    t.match(metrics, /\ngateway_quota_tokens_spent_total 15\n/)
    t.match(metrics, /\ngateway_quota_tokens_refused_total 15\n/)
  })

  t.test(`concurrent requests never spend more than the bucket holds (${mode})`, async (t) => {
    // 60 in flight at once: the tier's maxParallel (default 16) must not be what refuses them here.
    const { app } = await setup(t, mode, { AGENT_QUOTA_CAPACITY: '100', AGENT_QUOTA_REFILL_PER_SECOND: '1', AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '10', AGENT_QUOTA_MAX_PARALLEL: '60' })
    const results = await Promise.all(Array.from({ length: 60 }, () => spend(app, 'agent_c', 3)))
    const codes = results.map((r) => r.statusCode)
    t.equal(codes.filter((c) => c === 200).length, 33, '33 × 3 tokens fit in 100 (the clock is frozen)')
    t.equal(codes.filter((c) => c === 429).length, 27)
    t.same(results.filter((r) => r.statusCode === 200).map((r) => r.json().remaining).sort((a, b) => a - b), Array.from({ length: 33 }, (_, i) => i * 3 + 1), 'each admission saw a distinct remaining')
    t.equal((await quota(app, 'agent_c')).remaining, 1)
  })

  t.test(`bad input answers 400 JSON and leaves the bucket unchanged (${mode})`, async (t) => {
    const { app, redis } = await setup(t, mode, { AGENT_QUOTA_CAPACITY: '20', AGENT_QUOTA_REFILL_PER_SECOND: '1', AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '50' })
    t.equal((await spend(app, 'agent_bad', 4)).statusCode, 200)
    const before = await quota(app, 'agent_bad')
    t.same(before, { agentId: 'agent_bad', tier: 'default', capacity: 20, remaining: 16, refillPerSecond: 1, fullInMs: 4000 })
    const bucketKeys = async () => {
      if (!redis) return []
      const client = createRedisClient({ url: redis.url, connectTimeoutMs: 1000, commandTimeoutMs: 1000 })!
      try {
        await waitForRedis(client, 2000)
        return (await client.keys('gw:bucket:*')).sort()
      } finally { client.disconnect() }
    }
    const keysBefore = await bucketKeys()

    const post = (payload: string, contentType = 'application/json') =>
      app.inject({ method: 'POST', url: '/api/request', headers: { 'content-type': contentType }, payload })
    const cases: Array<[string, string, object, string?]> = [
      ['tokens 0', '{"agentId":"agent_bad","tokens":0}', badRequest('body/tokens must be >= 1')],
      ['negative tokens', '{"agentId":"agent_bad","tokens":-3}', badRequest('body/tokens must be >= 1')],
      ['fractional tokens', '{"agentId":"agent_bad","tokens":1.5}', badRequest('body/tokens must be integer')],
      ['tokens above the bucket capacity', '{"agentId":"agent_bad","tokens":21}', badRequest('body/tokens must be <= 20')],
      ['huge tokens', '{"agentId":"agent_bad","tokens":1e308}', badRequest('body/tokens must be <= 20')],
      ['tokens 1e309 (Infinity in JSON.parse)', '{"agentId":"agent_bad","tokens":1e309}', badRequest('body/tokens must be integer')],
      ['tokens as a string', '{"agentId":"agent_bad","tokens":"5"}', badRequest('body/tokens must be integer')],
      ['tokens null', '{"agentId":"agent_bad","tokens":null}', badRequest('body/tokens must be integer')],
      ['tokens missing', '{"agentId":"agent_bad"}', badRequest("body must have required property 'tokens'")],
      ['agentId missing', '{"tokens":1}', badRequest("body must have required property 'agentId'")],
      ['10 KB agentId', JSON.stringify({ agentId: 'a'.repeat(10_240), tokens: 1 }), badRequest('body/agentId must match pattern "^[A-Za-z0-9_.-]{1,128}$"')],
      ['empty agentId', '{"agentId":"","tokens":1}', badRequest('body/agentId must match pattern "^[A-Za-z0-9_.-]{1,128}$"')],
      ['agentId with a hash-tag brace', '{"agentId":"agent_bad}x","tokens":1}', badRequest('body/agentId must match pattern "^[A-Za-z0-9_.-]{1,128}$"')],
      ['agentId as a number', '{"agentId":7,"tokens":1}', badRequest('body/agentId must be string')],
      ['unknown field', '{"agentId":"agent_bad","tokens":1,"priority":"high"}', badRequest('body must NOT have additional properties')],
      ['array body', '[{"agentId":"agent_bad","tokens":1}]', badRequest('body must be object')],
      ['malformed JSON', '{"agentId":"agent_bad","tokens":', { statusCode: 400, error: 'Bad Request', message: 'Body is not valid JSON but content-type is set to \'application/json\'', code: 'FST_ERR_CTP_INVALID_JSON_BODY' }],
      ['empty JSON body', '', { statusCode: 400, error: 'Bad Request', message: "Body cannot be empty when content-type is set to 'application/json'", code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }],
      // Form bodies are accepted (the IRL seed's k6 scripts); their numbers are coerced, their bounds still hold.
      ['form-encoded body with tokens 0', 'agentId=agent_bad&tokens=0', badRequest('body/tokens must be >= 1'), 'application/x-www-form-urlencoded'],
      ['XML body', '<agentId>agent_bad</agentId>', { statusCode: 415, error: 'Unsupported Media Type', message: 'Unsupported Media Type', code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }, 'application/xml']
    ]
    for (const [name, payload, expected, contentType] of cases) {
      const res = await post(payload, contentType)
      t.same({ status: res.statusCode, body: res.json() }, { status: (expected as { statusCode: number }).statusCode, body: expected }, name)
    }
    for (const [name, id] of [['id with a colon', 'agent%3Abad'], ['id with a space', 'agent%20bad'], ['id with a brace', 'agent%7Bx%7D']]) {
      const res = await app.inject({ method: 'GET', url: `/api/quota/${id}` })
      t.same(res.json(), badRequest('params/agentId must match pattern "^[A-Za-z0-9_.-]{1,128}$"'), `GET: ${name}`)
    }

    t.same(await quota(app, 'agent_bad'), before, 'the bucket is exactly as before')
    t.same(await bucketKeys(), keysBefore, 'no bucket was created for a refused id')
    t.equal((await spend(app, 'agent_bad', 16)).json().remaining, 0, 'all 16 remaining tokens are still there to spend')
  })
}

t.test('Redis server clock: Retry-After from the refill rate without an injected clock', async (t) => {
  const redis = await redisFor(t)
  const app = await build(t, { REDIS_URL: redis.url, AGENT_QUOTA_CAPACITY: '5', AGENT_QUOTA_REFILL_PER_SECOND: '1', AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '5' })
  t.equal((await spend(app, 'agent_srv', 5)).statusCode, 200)
  const refused = await spend(app, 'agent_srv', 3)
  // 3 tokens at 1 per second, less the few milliseconds since the spend: between 2 and 3 s, announced as 3.
  t.equal(refused.headers['retry-after'], '3')
  t.same(refused.json(), quotaExceeded('agent_srv', 3, 3))
  const state = await quota(app, 'agent_srv')
  t.ok(state.fullInMs > 4000 && state.fullInMs <= 5000, `full in ${state.fullInMs} ms`)
})
