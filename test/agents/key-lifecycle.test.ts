// Keys: issue, use, list, revoke, expiry; in process (memory and Redis) and across two gateway processes on one Redis.
import t from 'tap'
import { Redis } from 'ioredis'
import { build, gatewayProcessFor, redisFor, sample, waitFor } from '../helper.js'
import { ADMIN_TOKEN, admin, issueKey, spendOver } from './helper.js'

const unauthorized = (message: string) => ({ statusCode: 401, error: 'Unauthorized', message: `Agent key required: ${message}`, code: 'GW_AGENT_KEY_REQUIRED' })
const NO_KEY = 'send "x-api-key: <key>" (keys come from POST /admin/agents/:agentId/keys or `npm run keys -- create`)'
const BAD_KEY = 'the key is unknown, revoked or malformed'

for (const store of ['memory', 'redis'] as const) {
  t.test(`issue, use, list, revoke (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN, ...(redis ? { REDIS_URL: redis.url } : {}) })

    const noKey = await app.inject({ method: 'POST', url: '/api/request', payload: { tokens: 1 } })
    t.equal(noKey.statusCode, 401)
    t.same(noKey.json(), unauthorized(NO_KEY), 'no key: 401 that says how to get one')

    const issued = await issueKey(app, 'agent-1.5')
    t.match(issued, { agentId: 'agent-1.5', tier: 'default', expiresAt: null, keyId: /^[0-9a-f]{16}$/, key: /^gwk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/ })
    t.ok(issued.key.startsWith(`gwk_${issued.keyId}_`), 'the key names its id')

    const viaHeader = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': issued.key }, payload: { tokens: 3 } })
    t.same(viaHeader.json(), { allowed: true, agentId: 'agent-1.5', spent: 3, remaining: 97, capacity: 100 }, 'x-api-key: the agent comes from the key')
    const viaBearer = await app.inject({ method: 'POST', url: '/api/request', headers: { authorization: `Bearer ${issued.key}` }, payload: { agentId: 'agent-1.5', tokens: 2 } })
    t.same(viaBearer.json(), { allowed: true, agentId: 'agent-1.5', spent: 2, remaining: 95, capacity: 100 }, 'Authorization: Bearer works too, and a matching body agentId is fine')

    const listed = await app.inject({ method: 'GET', url: '/admin/agents/agent-1.5/keys', headers: admin })
    t.equal(listed.statusCode, 200)
    t.same(listed.json(), [{ keyId: issued.keyId, agentId: 'agent-1.5', tier: 'default', createdAt: issued.createdAt, expiresAt: null }], 'the list never shows the key')
    t.notOk(listed.body.includes(issued.key.slice(21)), 'no part of the secret in the list')

    if (redis) {
      const client = new Redis(redis.url)
      t.teardown(() => client.disconnect())
      const stored = await client.hgetall(`gw:agentkey:{${issued.keyId}}`)
      t.same(Object.keys(stored).sort(), ['a', 'c', 'e', 'h', 't'], 'Redis holds the hash, agent, tier and times')
      t.match(stored.h, /^[0-9a-f]{64}$/, 'an HMAC-SHA256')
      t.notOk(JSON.stringify(stored).includes(issued.key.slice(21)), 'never the key or its secret')
    }

    const revoked = await app.inject({ method: 'DELETE', url: `/admin/keys/${issued.keyId}`, headers: admin })
    t.equal(revoked.statusCode, 204)
    t.equal(revoked.body, '')
    const after = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': issued.key }, payload: { tokens: 1 } })
    t.equal(after.statusCode, 401)
    t.same(after.json(), unauthorized(BAD_KEY), 'a revoked key: 401 at once on the gateway that revoked it')
    t.equal((await app.inject({ method: 'DELETE', url: `/admin/keys/${issued.keyId}`, headers: admin })).statusCode, 404, 'revoking twice: 404')
    t.same((await app.inject({ method: 'GET', url: '/admin/agents/agent-1.5/keys', headers: admin })).json(), [], 'the list is empty')

    const forged = `gwk_${issued.keyId}_${'A'.repeat(43)}`
    const issued2 = await issueKey(app, 'agent-2')
    const forgedSecret = `gwk_${issued2.keyId}_${'A'.repeat(43)}`
    t.same((await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': forged }, payload: { tokens: 1 } })).json(), unauthorized(BAD_KEY))
    t.same((await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': forgedSecret }, payload: { tokens: 1 } })).json(), unauthorized(BAD_KEY), 'a live key id with a wrong secret: 401')
    t.same((await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': 'gwk_nonsense' }, payload: { tokens: 1 } })).json(), unauthorized(BAD_KEY), 'malformed: 401')

    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    t.equal(sample(text, 'gateway_agent_keys_issued_total', { tier: 'default' }), 2)
    t.equal(sample(text, 'gateway_agent_keys_revoked_total', { tier: 'default' }), 1)
    t.equal(sample(text, 'gateway_agent_denied_total', { reason: 'missing_key', tier: 'none' }), 1)
    t.equal(sample(text, 'gateway_agent_denied_total', { reason: 'invalid_key', tier: 'none' }), 4)
    t.notOk(/agent-1\.5|agent-2/.test(text), 'no series carries an agent id')
  })
}

t.test('an expired key gets 401 (expired) from its expiry on', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN })
  const issued = await issueKey(app, 'short-lived', { expiresInSeconds: 1 })
  t.ok(issued.expiresAt !== null && Date.parse(issued.expiresAt) - Date.parse(issued.createdAt) === 1000, 'expiresAt is createdAt + 1 s')
  t.equal((await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': issued.key }, payload: { tokens: 1 } })).statusCode, 200)
  const expired = await waitFor(async () => {
    const res = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': issued.key }, payload: { tokens: 1 } })
    return res.statusCode === 401 ? res : undefined
  }, { timeoutMs: 3000, what: 'the key to expire' })
  t.ok(Date.now() >= Date.parse(issued.expiresAt!), 'refused only once expiresAt has passed')
  t.same(expired.json(), unauthorized('the key has expired; ask for a new one'))
})

t.test('revoke on one gateway process: the key gets 401 on both within 1 s', async (t) => {
  const redis = await redisFor(t)
  const env = { REDIS_URL: redis.url, ADMIN_TOKEN, REDIS_COMMAND_TIMEOUT_MS: '5000' }
  const [a, b] = await Promise.all([gatewayProcessFor(t, { AGENT_AUTH: 'key', ...env }), gatewayProcessFor(t, { AGENT_AUTH: 'key', ...env })])
  const issued = await issueKey(a.url, 'agent-x')
  // Both gateways have the key cached (AGENT_KEY_CACHE_MS, 500 ms by default) before the revocation.
  t.equal((await spendOver(a.url, 1, { key: issued.key })).status, 200)
  t.equal((await spendOver(b.url, 1, { key: issued.key })).status, 200, 'the key issued through A works on B')

  const res = await fetch(`${b.url}/admin/keys/${issued.keyId}`, { method: 'DELETE', headers: admin })
  t.equal(res.status, 204, 'revoked through B')
  const revokedAt = Date.now()
  const lag = await Promise.all([a, b].map((gateway) => waitFor(async () => {
    const r = await spendOver(gateway.url, 1, { key: issued.key })
    return r.status === 401 ? Date.now() - revokedAt : 0
  }, { timeoutMs: 3000, intervalMs: 20, what: `401 from ${gateway.url}` })))
  t.ok(lag.every((ms) => ms <= 1000), `401 on both within 1 s (A after ${lag[0]} ms, B after ${lag[1]} ms)`)
  // And it stays refused: no cache brings it back.
  t.same((await Promise.all([a, b].map((g) => spendOver(g.url, 1, { key: issued.key })))).map((r) => r.status), [401, 401])
})
