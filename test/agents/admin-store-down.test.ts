import t from 'tap'
import { build, redisFor, stubsFor, waitFor } from '../helper.js'
import { ADMIN_TOKEN, admin, issueKey } from './helper.js'

// With Redis down, the admin API answered an unclassified 500 GW_INTERNAL (the ioredis error reached the error
// handler as is); it now answers 503 GW_KEY_STORE_UNAVAILABLE, and nothing changed once Redis is back.
t.test('admin API with the key store down: 503 with its code, nothing changed', async (t) => {
  const redis = await redisFor(t, { persistent: true }) // keys survive the kill, as with compose's appendonly Redis
  const stubs = await stubsFor(t)
  const app = await build(t, { ...stubs.gatewayEnv, REDIS_URL: redis.url, ADMIN_TOKEN })
  const kept = await issueKey(app, 'agent-kept')
  await redis.kill()

  const calls = [
    { method: 'POST' as const, url: '/admin/agents/agent-new/keys', payload: {} },
    { method: 'GET' as const, url: '/admin/agents/agent-kept/keys' },
    { method: 'PATCH' as const, url: `/admin/keys/${kept.keyId}`, payload: { tier: 'default' } },
    { method: 'DELETE' as const, url: `/admin/keys/${kept.keyId}` }
  ]
  for (const call of calls) {
    const res = await app.inject({ ...call, headers: admin })
    t.equal(res.statusCode, 503, `${call.method} ${call.url}: 503`)
    t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The agent-key store is unreachable, so nothing was changed; retry later', code: 'GW_KEY_STORE_UNAVAILABLE' })
  }

  await redis.start()
  const list = () => app.inject({ method: 'GET', url: '/admin/agents/agent-kept/keys', headers: admin })
  await waitFor(async () => (await list()).statusCode === 200, { timeoutMs: 10_000, what: 'the admin API to answer again once Redis is back' })
  const listed = await list()
  t.same(listed.json().map((k: { keyId: string }) => k.keyId), [kept.keyId], 'the kept key is still there, revoke refused meant not revoked')
  const fresh = await app.inject({ method: 'GET', url: '/admin/agents/agent-new/keys', headers: admin })
  t.same(fresh.json(), [], 'the refused issue created no key')
})
