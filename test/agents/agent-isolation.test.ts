// With keys (AGENT_AUTH=key, the default) no agent spends or reads another's bucket; admin routes exist only with ADMIN_TOKEN.
import t from 'tap'
import { build, redisFor } from '../helper.js'
import { ADMIN_TOKEN, admin, issueKey } from './helper.js'

const forbidden = (message: string) => ({ statusCode: 403, error: 'Forbidden', message: `Not allowed: ${message}`, code: 'GW_AGENT_FORBIDDEN' })

t.test('a key spends and reads only its own agent\'s bucket (Redis)', async (t) => {
  const redis = await redisFor(t)
  const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN, REDIS_URL: redis.url })
  const x = await issueKey(app, 'agent-x')
  const y = await issueKey(app, 'agent-y')

  const steal = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': x.key }, payload: { agentId: 'agent-y', tokens: 50 } })
  t.equal(steal.statusCode, 403)
  t.same(steal.json(), forbidden('this key belongs to agent agent-x, not agent-y'), 'naming another agent in the body: 403')
  const peek = await app.inject({ method: 'GET', url: '/api/quota/agent-y', headers: { 'x-api-key': x.key } })
  t.same(peek.json(), forbidden('this key belongs to agent agent-x, not agent-y'), 'reading another agent\'s quota: 403')
  const anonymous = await app.inject({ method: 'GET', url: '/api/quota/agent-y' })
  t.equal(anonymous.statusCode, 401, 'reading a quota without a key: 401')
  const wrongAdmin = await app.inject({ method: 'GET', url: '/api/quota/agent-y', headers: { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}x` } })
  t.equal(wrongAdmin.statusCode, 401, 'a near-miss admin token is no admin token')

  const own = await app.inject({ method: 'GET', url: '/api/quota/agent-y', headers: { 'x-api-key': y.key } })
  t.same(own.json(), { agentId: 'agent-y', tier: 'default', capacity: 100, remaining: 100, refillPerSecond: 10, fullInMs: 0 }, 'agent-y\'s bucket untouched by the attempts')
  const asAdmin = await app.inject({ method: 'GET', url: '/api/quota/agent-y', headers: admin })
  t.equal(asAdmin.statusCode, 200, 'the admin reads any quota')

  const mine = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': x.key }, payload: { tokens: 40 } })
  t.same(mine.json(), { allowed: true, agentId: 'agent-x', spent: 40, remaining: 60, capacity: 100 })
  t.equal((await app.inject({ method: 'GET', url: '/api/quota/agent-y', headers: { 'x-api-key': y.key } })).json().remaining, 100, 'agent-x\'s spending is its own')
  t.equal((await app.inject({ method: 'GET', url: '/api/quota/agent-x', headers: { 'x-api-key': x.key } })).json().remaining, 60)

  const denied = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(denied, /gateway_agent_denied_total\{reason="wrong_agent",tier="default"\} 2/, 'denials counted by reason and tier')
})

t.test('a user JWT is not an agent key, and a gwk_ bearer is not a JWT failure', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN })
  const x = await issueKey(app, 'agent-x')
  const res = await app.inject({ method: 'GET', url: '/api/quota/agent-x', headers: { authorization: `Bearer ${x.key}` } })
  t.equal(res.statusCode, 200, 'Bearer gwk_… identifies the agent')
  const jwtLike = await app.inject({ method: 'POST', url: '/api/request', headers: { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.x' }, payload: { tokens: 1 } })
  t.equal(jwtLike.statusCode, 401)
  t.equal(jwtLike.json().code, 'GW_AGENT_KEY_REQUIRED', 'a JWT on an agent route: the agent key is what is missing')
})

t.test('without ADMIN_TOKEN every admin route answers 404 JSON', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'key' })
  for (const [method, url] of [['POST', '/admin/agents/a/keys'], ['GET', '/admin/agents/a/keys'], ['DELETE', '/admin/keys/0123456789abcdef'], ['PATCH', '/admin/keys/0123456789abcdef']] as const) {
    const res = await app.inject({ method, url, headers: { authorization: 'Bearer anything-at-all-0123456789-0123456789' }, payload: method === 'GET' || method === 'DELETE' ? undefined : {} })
    t.equal(res.statusCode, 404, `${method} ${url}: 404`)
    t.match(res.json(), { statusCode: 404, error: 'Not Found', code: String }, 'the JSON error shape')
  }
})

t.test('admin API: 401 without the token, 400 on bad input, nothing changed', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN })
  const noToken = await app.inject({ method: 'POST', url: '/admin/agents/a/keys', payload: {} })
  t.same(noToken.json(), { statusCode: 401, error: 'Unauthorized', message: 'Admin API: send "Authorization: Bearer <ADMIN_TOKEN>"', code: 'GW_ADMIN_UNAUTHORIZED' })
  const badTier = await app.inject({ method: 'POST', url: '/admin/agents/a/keys', headers: admin, payload: { tier: 'platinum' } })
  t.same(badTier.json(), { statusCode: 400, error: 'Bad Request', message: 'unknown tier "platinum"; known tiers: default', code: 'GW_BAD_REQUEST' })
  const badId = await app.inject({ method: 'POST', url: '/admin/agents/a%7Bb%7D/keys', headers: admin, payload: {} })
  t.equal(badId.statusCode, 400, 'braces in an agent id: 400')
  const badExpiry = await app.inject({ method: 'POST', url: '/admin/agents/a/keys', headers: admin, payload: { expiresInSeconds: 0 } })
  t.equal(badExpiry.statusCode, 400)
  t.same((await app.inject({ method: 'GET', url: '/admin/agents/a/keys', headers: admin })).json(), [], 'no key was created by any of them')
  t.equal((await app.inject({ method: 'DELETE', url: '/admin/keys/not-hex', headers: admin })).statusCode, 400)
  t.equal((await app.inject({ method: 'PATCH', url: '/admin/keys/0123456789abcdef', headers: admin, payload: { tier: 'default' } })).statusCode, 404)
})
