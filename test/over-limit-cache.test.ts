import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import { BatchedRedisStore } from '../src/lib/stores/batched-redis-store.js'
import { OverLimitCache } from '../src/lib/stores/over-limit-cache.js'
import { build, redisFor, stubsFor, waitFor } from './helper.js'

const incr = (store: FastifyRateLimitStore, key: string, windowMs: number, max: number) =>
  new Promise<{ current: number, ttl: number }>((resolve, reject) => store.incr(key, (err, res) => err ? reject(err) : resolve(res!), windowMs, max))

t.test('the cached refusal lasts exactly until the window resets, and skips the store meanwhile', async (t) => {
  const server = await redisFor(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.quit())
  let now = 1_000_000
  const cache = new OverLimitCache(new BatchedRedisStore(redis, 'test:'), () => now)
  const MAX = 2
  const WINDOW = 60_000
  t.match(await incr(cache, 'k', WINDOW, MAX), { current: 1 })
  t.match(await incr(cache, 'k', WINDOW, MAX), { current: 2 })
  const over = await incr(cache, 'k', WINDOW, MAX)
  t.equal(over.current, 3, 'the store said: over the limit')
  const until = now + over.ttl
  t.equal(await redis.get('test:k'), '3')

  now = until - 1
  const cached = await incr(cache, 'k', WINDOW, MAX)
  t.same(cached, { current: MAX + 1, ttl: 1 }, 'one ms before the reset: refused from the cache, 1 ms left')
  t.equal(await redis.get('test:k'), '3', 'without a store round trip')

  now = until
  await incr(cache, 'k', WINDOW, MAX)
  t.equal(await redis.get('test:k'), '4', 'at the reset time the store is asked again')
})

// Fails without the cache only on the "store not asked" assertion; the exactness assertions hold either way.
t.test('2 gateways on one Redis: no extra admits, consistent headers, admitted again right after the reset', async (t) => {
  const server = await redisFor(t)
  const stubs = await stubsFor(t, {}, []) // the demo route calls no upstream
  const redis = new Redis(server.url)
  t.teardown(() => redis.quit())
  const MAX = 3
  const env = { ...stubs.gatewayEnv, REDIS_URL: server.url, RATE_LIMIT_DEMO_MAX: String(MAX), RATE_LIMIT_DEMO_WINDOW_MS: '3000' }
  const gateways = [await build(t, env), await build(t, env)]
  const get = (i: number) => gateways[i % 2].inject({ method: 'GET', url: '/api/test-rate-limit' })

  const answers = []
  for (let i = 0; i < 40; i++) answers.push(await get(i))
  t.equal(answers.filter((r) => r.statusCode === 200).length, MAX, `exactly ${MAX} admitted across both gateways`)
  const [key] = await redis.keys('gw:rl:*test-rate-limit*')
  const pttl = await redis.pttl(key)
  for (const res of answers.filter((r) => r.statusCode === 429)) {
    t.equal(res.headers['x-ratelimit-remaining'], '0')
    t.equal(res.headers['x-ratelimit-limit'], String(MAX))
    const reset = Number(res.headers['x-ratelimit-reset'])
    t.ok(reset >= Math.ceil(pttl / 1000) && reset <= 3, `reset ${reset} s matches the store's window (${pttl} ms left now)`)
    t.equal(res.headers['retry-after'], res.headers['x-ratelimit-reset'])
  }
  t.ok(Number(await redis.get(key)) <= MAX + 2, `the store counted ${await redis.get(key)}: each gateway asked it once past the limit, then answered from its cache`)

  // The window ends when its key expires: right after, both gateways admit again (neither refuses from a stale entry).
  await waitFor(async () => await redis.exists(key) === 0, { timeoutMs: 5000, what: 'the window to reset' })
  t.equal((await get(0)).statusCode, 200, 'gateway A admits right after the reset')
  t.equal((await get(1)).statusCode, 200, 'gateway B admits right after the reset')
})
