import t from 'tap'
import { createTokenSigner } from '../../src/lib/jwt.js'
import { Redis } from 'ioredis'
import { build, JWT_SECRET, redisFor, sample, stubsFor } from '../helper.js'

// Security issue 12, finding 2: identities minted from one address do not escape its ceiling. The reproduction:
// 30 logins as new load_test_ users from one IP, then 5 requests each, with RATE_LIMIT_MAX=5, gave 0 × 429 before
// the fix (each token had its own bucket and /auth/login was exempt from the global limit).
t.test('30 sybil users from one address meet RATE_LIMIT_IP_MAX, logins included', async (t) => {
  const stubs = await stubsFor(t, {}, ['auth', 'user'])
  const app = await build(t, { ...stubs.gatewayEnv, RATE_LIMIT_MAX: '5', RATE_LIMIT_IP_MAX: '40', RATE_LIMIT_LOGIN_IP_MAX: '1000', RATE_LIMIT_LOGIN_MAX: '1000', RATE_LIMIT_LOGIN_ACCOUNT_MAX: '1000' })
  const statuses: number[] = []
  const tokens: string[] = []
  for (let i = 0; i < 30; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: `load_test_sybil_${i}`, password: 'pw' } })
    statuses.push(res.statusCode)
    if (res.statusCode === 200) tokens.push(res.json().token)
  }
  // Tokens for users the limit kept from logging in, signed directly: a per-user bucket each, one address.
  const sign = createTokenSigner(JWT_SECRET, 3600)
  for (let i = tokens.length; i < 30; i++) tokens.push(sign(`load_test_sybil_${i}`))
  for (const token of tokens) {
    for (let n = 0; n < 5; n++) {
      const res = await app.inject({ url: '/users/load_test_sybil_0', headers: { authorization: `Bearer ${token}` } })
      statuses.push(res.statusCode)
    }
  }
  const allowed = statuses.filter((s) => s !== 429).length
  const limited = statuses.filter((s) => s === 429).length
  t.equal(allowed, 40, `exactly RATE_LIMIT_IP_MAX (40) of ${statuses.length} requests passed the address, whatever identity they carried`)
  t.equal(statuses.slice(0, 30).filter((s) => s === 200).length, 30, 'the 30 logins counted against the ceiling (they came first and passed)')
  // A fresh identity, under its own limit: the address ceiling is what refuses it.
  const denied = await app.inject({ url: '/users/load_test_sybil_new', headers: { authorization: `Bearer ${sign('load_test_sybil_new')}` } })
  t.same(denied.json(), { statusCode: 429, error: 'Too Many Requests', message: denied.json().message, code: 'GW_RATE_LIMITED' }, 'the 429 is the contract\'s JSON')
  t.equal(denied.headers['x-ratelimit-limit'], '40', 'it carries the ceiling as X-RateLimit-Limit')
  t.ok(Number(denied.headers['retry-after']) > 0, 'and Retry-After')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.equal(sample(metrics, 'gateway_rate_limited_total', { limiter: 'address' }), limited + 1, 'every refusal counted under limiter="address"')

  const other = await app.inject({ url: '/users/load_test_fresh', remoteAddress: '10.9.9.9', headers: { authorization: `Bearer ${sign('load_test_fresh')}` } })
  t.not(other.statusCode, 429, 'another address is not limited by the first one\'s ceiling')
})

/** Lua script calls Redis has run (the rate-limit store's batches). */
async function scriptCalls (redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats')
  return [...stats.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
}

// Performance issue 14 (cheap floods): the ceiling counts what reaches Redis. Before, it was checked first on every
// request, so one client flooding past its own limit cost a Redis round trip per refusal and used up its address:
// the neighbours below were refused and the script ran once per flood request.
t.test('a client over its own limit is refused without Redis and leaves its address to the others', async (t) => {
  const server = await redisFor(t)
  const stubs = await stubsFor(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.quit())
  const app = await build(t, { ...stubs.gatewayEnv, REDIS_URL: server.url, RATE_LIMIT_MAX: '5', RATE_LIMIT_IP_MAX: '40' })
  const sign = createTokenSigner(JWT_SECRET, 3600)
  const get = (user: string) => app.inject({ url: `/users/${user}`, headers: { authorization: `Bearer ${sign(user)}` } })

  const flood: number[] = []
  for (let i = 0; i < 6; i++) flood.push((await get('load_test_flood')).statusCode)
  t.same(flood, [200, 200, 200, 200, 200, 429], 'the flooding client meets its own limit of 5')
  const callsBefore = await scriptCalls(redis)
  for (let i = 0; i < 100; i++) t.equal((await get('load_test_flood')).statusCode, 429)
  t.equal(await scriptCalls(redis) - callsBefore, 0, '100 more refusals made no Redis call')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.equal(sample(metrics, 'gateway_rate_limited_total', { limiter: 'global' }), 101, 'each refusal counted under its own limiter')
  t.equal(sample(metrics, 'gateway_rate_limited_total', { limiter: 'address' }), 0, 'none under the address ceiling')

  const neighbours = []
  for (let i = 0; i < 34; i++) neighbours.push((await get(`load_test_neighbour_${i}`)).statusCode)
  t.equal(neighbours.filter((s) => s === 200).length, 34, 'the 34 neighbours fit in the ceiling (40 − the flood\'s 6 that reached Redis)')
  t.equal((await get('load_test_neighbour_last')).statusCode, 429, 'the 41st counted request of the address is refused')
})

t.test('on the default path the route\'s own limit and the address ceiling share one Redis call', async (t) => {
  const server = await redisFor(t)
  const stubs = await stubsFor(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.quit())
  const app = await build(t, { ...stubs.gatewayEnv, REDIS_URL: server.url })
  const sign = createTokenSigner(JWT_SECRET, 3600)
  t.equal((await app.inject({ url: '/users/load_test_one', headers: { authorization: `Bearer ${sign('load_test_one')}` } })).statusCode, 200, 'warm-up: the script is loaded')
  const before = await scriptCalls(redis)
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ url: '/users/load_test_one', headers: { authorization: `Bearer ${sign('load_test_one')}` } })
    t.equal(res.statusCode, 200)
  }
  t.equal(await scriptCalls(redis) - before, 10, '10 requests, one at a time: 10 script calls (two before: the own limit, then the ceiling)')
  const counts = await redis.mget(...await redis.keys('gw:rl:*'))
  t.same(counts.map(Number).sort((a, b) => a - b), [11, 11], 'both counters counted every request')
})
