import t from 'tap'
import { createTokenSigner } from '../src/lib/jwt.js'
import type { InjectOptions } from 'fastify'
import type { Gateway } from '../src/app.js'
import { build, JWT_SECRET, redisFor, sample, startStub, waitFor } from './helper.js'

const sign = createTokenSigner(JWT_SECRET, 3600)
const bearer = (userId: string) => ({ authorization: `Bearer ${sign(userId)}` })

const rateLimited = (seconds: number | string) => ({
  statusCode: 429,
  error: 'Too Many Requests',
  message: `Rate limit exceeded; retry in ${seconds} seconds`,
  code: 'GW_RATE_LIMITED'
})

/** GETs `url` until it is refused; returns the statuses seen, so a caller can assert exactly where the limit bit. */
async function statuses (app: Gateway, count: number, request: InjectOptions) {
  const seen: number[] = []
  for (let i = 0; i < count; i++) seen.push((await app.inject(request)).statusCode)
  return seen
}

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`limit 100: requests 1..100 pass with exact headers, the 101st is 429 (${mode})`, async (t) => {
    const redis = mode === 'redis' ? await redisFor(t) : undefined
    const app = await build(t, { RATE_LIMIT_MAX: '100', RATE_LIMIT_WINDOW_MS: '60000', ...(redis ? { REDIS_URL: redis.url } : {}) })

    let previousReset = Infinity
    for (let i = 1; i <= 100; i++) {
      const res = await app.inject({ method: 'GET', url: '/api/quota/agent_window' })
      if (res.statusCode !== 200) t.fail(`request ${i} answered ${res.statusCode}: ${res.body}`)
      t.equal(res.headers['x-ratelimit-limit'], '100', `request ${i}: limit`)
      t.equal(res.headers['x-ratelimit-remaining'], String(100 - i), `request ${i}: remaining`)
      const reset = Number(res.headers['x-ratelimit-reset'])
      t.ok(Number.isInteger(reset) && reset > 0 && reset <= 60 && reset <= previousReset, `request ${i}: reset ${reset} within the window and not growing`)
      previousReset = reset
    }

    const refused = await app.inject({ method: 'GET', url: '/api/quota/agent_window' })
    t.equal(refused.statusCode, 429)
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `Retry-After ${retryAfter} within the window`)
    t.equal(refused.headers['x-ratelimit-reset'], String(retryAfter), 'Reset and Retry-After agree on the 429')
    t.ok(retryAfter <= previousReset, 'Retry-After is not later than the last Reset')
    t.equal(refused.headers['x-ratelimit-limit'], '100')
    t.equal(refused.headers['x-ratelimit-remaining'], '0')
    t.equal(refused.headers['content-type'], 'application/json; charset=utf-8')
    t.same(refused.json(), rateLimited(retryAfter))

    // A refused request still counts, so the key stays limited.
    t.equal((await app.inject({ method: 'GET', url: '/api/quota/agent_window' })).statusCode, 429)

    for (const url of ['/health', '/health/ready', '/metrics']) {
      const results = await statuses(app, 3, { method: 'GET', url })
      t.same(results, [200, 200, 200], `${url} is never limited`)
      const res = await app.inject({ method: 'GET', url })
      t.equal(res.headers['x-ratelimit-limit'], undefined, `${url} carries no rate-limit headers`)
    }
    const metrics = await app.inject({ method: 'GET', url: '/metrics' })
    t.equal(sample(metrics.body, 'gateway_rate_limited_total', { limiter: 'global' }), 2, 'both refusals counted')
  })
}

t.test('the window resets: after Reset seconds the key is admitted again (tiny window)', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '1000' })
  t.same(await statuses(app, 3, { method: 'GET', url: '/api/quota/a' }), [200, 200, 429])
  const refused = await app.inject({ method: 'GET', url: '/api/quota/a' })
  t.equal(refused.headers['retry-after'], '1', 'a 1 s window never asks for more than 1 s')
  const started = Date.now()
  const again = await waitFor(async () => {
    const res = await app.inject({ method: 'GET', url: '/api/quota/a' })
    return res.statusCode === 200 && res
  }, { timeoutMs: 3000, intervalMs: 50, what: 'the key to be admitted again' })
  t.ok(Date.now() - started <= 1000 + 200, `admitted again within Retry-After (${Date.now() - started} ms)`)
  t.equal(again.headers['x-ratelimit-remaining'], '1', 'a fresh window')
})

t.test('keyed by user id with a valid token, else by IP', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '2' })
  const get = (headers: Record<string, string>, remoteAddress = '10.0.0.1') =>
    app.inject({ method: 'GET', url: '/api/quota/k', headers, remoteAddress })

  t.same([(await get(bearer('alice'))).statusCode, (await get(bearer('alice'))).statusCode, (await get(bearer('alice'))).statusCode], [200, 200, 429], 'alice has her own 2')
  t.equal((await get(bearer('alice'), '10.9.9.9')).statusCode, 429, 'alice stays limited from another IP')
  const bob = await get(bearer('bob'))
  t.equal(bob.statusCode, 200, 'bob on the same IP has his own limit')
  t.equal(bob.headers['x-ratelimit-remaining'], '1')

  const anonymous = await get({})
  t.equal(anonymous.statusCode, 200, 'the IP without a token has its own limit')
  t.equal(anonymous.headers['x-ratelimit-remaining'], '1')
  const forged = await get({ authorization: `${bearer('carol').authorization.slice(0, -4)}AAAA` })
  t.equal(forged.headers['x-ratelimit-remaining'], '0', 'an invalid token counts against the IP, not a fresh user key')
  t.equal((await get({})).statusCode, 429, 'the IP is now limited')
  t.equal((await get({}, '10.0.0.2')).statusCode, 200, 'another IP is not')
})

t.test('RATE_LIMIT_KEY=ip: users behind one IP share its limit', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_KEY: 'ip' })
  const get = (headers: Record<string, string>, remoteAddress: string) => app.inject({ method: 'GET', url: '/api/quota/k', headers, remoteAddress })
  t.equal((await get(bearer('alice'), '10.0.0.1')).statusCode, 200)
  t.equal((await get(bearer('bob'), '10.0.0.1')).statusCode, 200)
  const third = await get({}, '10.0.0.1')
  t.equal(third.statusCode, 429)
  t.same(third.json(), rateLimited(third.headers['retry-after'] as string))
  t.equal((await get(bearer('alice'), '10.0.0.2')).statusCode, 200, 'alice from another IP is counted there')
})

t.test('login brute-force guard is keyed by IP + username', async (t) => {
  const auth = await startStub('auth', { JWT_SECRET })
  t.teardown(() => auth.stop())
  const app = await build(t, { AUTH_URL: auth.url, RATE_LIMIT_LOGIN_MAX: '3', RATE_LIMIT_LOGIN_WINDOW_MS: '60000', RATE_LIMIT_MAX: '1000' })
  const attempt = (username: string, password: string, remoteAddress = '10.1.1.1') =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { username, password }, remoteAddress })

  t.equal((await attempt('load_test_victim', 'right-pw')).statusCode, 200, 'the user exists with right-pw')
  const wrong = [await attempt('load_test_victim', 'guess-1'), await attempt('load_test_victim', 'guess-2')]
  t.same(wrong.map((r) => r.statusCode), [401, 401])
  t.same(wrong.map((r) => r.headers['x-ratelimit-remaining']), ['1', '0'])
  t.equal(wrong[0].headers['x-ratelimit-limit'], '3')

  const blocked = await attempt('load_test_victim', 'right-pw')
  t.equal(blocked.statusCode, 429, 'the fourth attempt is refused even with the right password')
  t.same(blocked.json(), rateLimited(blocked.headers['retry-after'] as string))
  t.ok(Number(blocked.headers['retry-after']) > 0 && Number(blocked.headers['retry-after']) <= 60)

  t.equal((await attempt('load_test_other', 'pw-other')).statusCode, 200, 'another username from the same IP is not limited')
  t.equal((await attempt('load_test_victim', 'right-pw', '10.2.2.2')).statusCode, 200, 'the same username from another IP is not limited')
})

t.test('GET /api/test-rate-limit answers 429 after RATE_LIMIT_DEMO_MAX', async (t) => {
  const app = await build(t, { RATE_LIMIT_DEMO_MAX: '3', RATE_LIMIT_DEMO_WINDOW_MS: '10000', RATE_LIMIT_MAX: '1000' })
  const results = []
  for (let i = 0; i < 4; i++) results.push(await app.inject({ method: 'GET', url: '/api/test-rate-limit' }))
  t.same(results.map((r) => r.statusCode), [200, 200, 200, 429])
  t.same(results.map((r) => r.headers['x-ratelimit-limit']), ['3', '3', '3', '3'])
  t.same(results.map((r) => r.headers['x-ratelimit-remaining']), ['2', '1', '0', '0'])
  t.same(results[0].json(), { ok: true, message: 'within the demo limit; keep calling to see a 429' })
  const retryAfter = Number(results[3].headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 10, `Retry-After ${retryAfter} within the 10 s demo window`)
  t.same(results[3].json(), rateLimited(retryAfter))
  t.equal((await app.inject({ method: 'GET', url: '/api/quota/demo' })).statusCode, 200, 'the demo limit is its own, not the global one')
})

for (const mode of ['draft', 'both'] as const) {
  t.test(`RATE_LIMIT_HEADERS=${mode}: draft-11 RateLimit-Policy and RateLimit fields`, async (t) => {
    const app = await build(t, { RATE_LIMIT_HEADERS: mode, RATE_LIMIT_MAX: '100', RATE_LIMIT_WINDOW_MS: '60000', RATE_LIMIT_DEMO_MAX: '1', RATE_LIMIT_DEMO_WINDOW_MS: '10000' })
    const first = await app.inject({ method: 'GET', url: '/api/quota/d' })
    t.equal(first.headers['ratelimit-policy'], '"default";q=100;w=60')
    t.equal(first.headers.ratelimit, '"default";r=99;t=60')
    const second = await app.inject({ method: 'GET', url: '/api/quota/d' })
    t.match(second.headers.ratelimit, /^"default";r=98;t=(60|59)$/)
    if (mode === 'draft') {
      t.notOk('x-ratelimit-limit' in first.headers || 'x-ratelimit-remaining' in first.headers || 'x-ratelimit-reset' in first.headers, 'legacy fields dropped')
    } else {
      t.equal(first.headers['x-ratelimit-limit'], '100')
      t.equal(first.headers['x-ratelimit-remaining'], '99')
      t.equal(first.headers['x-ratelimit-reset'], '60')
    }

    // A per-route limit carries its own quota and window; the 429 keeps Retry-After.
    const demo = await app.inject({ method: 'GET', url: '/api/test-rate-limit' })
    t.equal(demo.headers['ratelimit-policy'], '"default";q=1;w=10')
    t.equal(demo.headers.ratelimit, '"default";r=0;t=10')
    const refused = await app.inject({ method: 'GET', url: '/api/test-rate-limit' })
    t.equal(refused.statusCode, 429)
    t.match(refused.headers.ratelimit, /^"default";r=0;t=(10|9)$/)
    t.equal(refused.headers['retry-after'], (refused.headers.ratelimit as string).split('t=')[1])
    t.same(refused.json(), rateLimited(refused.headers['retry-after'] as string))

    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.headers['ratelimit-policy'], undefined, '/health carries no rate-limit fields')
  })
}
