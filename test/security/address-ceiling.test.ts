import t from 'tap'
import { createTokenSigner } from '../../src/lib/jwt.js'
import { build, JWT_SECRET, sample, stubsFor } from '../helper.js'

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
  const denied = await app.inject({ url: '/users/load_test_sybil_0', headers: { authorization: `Bearer ${tokens[0]}` } })
  t.same(denied.json(), { statusCode: 429, error: 'Too Many Requests', message: denied.json().message, code: 'GW_RATE_LIMITED' }, 'the 429 is the contract\'s JSON')
  t.equal(denied.headers['x-ratelimit-limit'], '40', 'it carries the ceiling as X-RateLimit-Limit')
  t.ok(Number(denied.headers['retry-after']) > 0, 'and Retry-After')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.equal(sample(metrics, 'gateway_rate_limited_total', { limiter: 'address' }), limited + 1, 'every refusal counted under limiter="address"')

  const other = await app.inject({ url: '/users/load_test_fresh', remoteAddress: '10.9.9.9', headers: { authorization: `Bearer ${sign('load_test_fresh')}` } })
  t.not(other.statusCode, 429, 'another address is not limited by the first one\'s ceiling')
})
