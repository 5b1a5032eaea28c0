import t from 'tap'
import { gatewayProcessFor, redisFor, stubsFor } from '../helper.js'

// Security issue 12, finding 1: on loopback without JWT_SECRET, the secret generated at start is shared by every
// process of one Redis (SET NX, then GET), so a token the auth stub signs verifies on every gateway.
t.test('two gateways and the auth stub, none given JWT_SECRET, agree on the generated one through Redis', async (t) => {
  const redis = await redisFor(t)
  const stubs = await stubsFor(t, { REDIS_URL: redis.url, JWT_SECRET: '' }, ['auth', 'user'])
  const env = { ...stubs.gatewayEnv, REDIS_URL: redis.url, JWT_SECRET: '' }
  const [a, b] = [await gatewayProcessFor(t, env, { output: 'capture' }), await gatewayProcessFor(t, env)]
  t.match(a.output(), /JWT_SECRET not set: using a random value generated at start and shared through Redis/, 'it says so at start')
  const login = await fetch(`${a.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'load_test_shared', password: 'pw' }) })
  t.equal(login.status, 200, 'login through gateway A')
  const { token } = await login.json() as { token: string }
  for (const gateway of [a, b]) {
    const res = await fetch(`${gateway.url}/users/load_test_shared`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 200, `the token verifies on ${gateway === a ? 'A' : 'B'}`)
  }
})
