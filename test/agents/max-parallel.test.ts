// maxParallel is exact across gateways: two gateway instances (own Redis connections) on one real Redis, requests
// held in flight by a gate, N concurrent → exactly maxParallel admitted; released on response; a dead holder expires.
import t, { type Test } from 'tap'
import { buildGateway } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { JWT_SECRET, redisFor, waitFor } from '../helper.js'
import { ADMIN_TOKEN, issueKey } from './helper.js'

/** A gateway whose POST /held (an agent 'spend' route, as /api/request) answers only when `open()` is called. */
async function gatewayWithGate (t: Test, env: Record<string, string>) {
  const app = await buildGateway(loadConfig({ JWT_SECRET, LOG_LEVEL: 'silent', AUDIT_LOG_PATH: '/dev/null', ADMIN_TOKEN, ...env }), { logger: false })
  let release!: () => void
  let gate = new Promise<void>((resolve) => { release = resolve })
  let entered = 0
  app.post('/held', { config: { agent: 'spend' } }, async () => { entered++; await gate; return { ok: true } })
  t.teardown(() => app.close())
  await app.ready()
  return {
    app,
    entered: () => entered,
    open () { release(); gate = new Promise<void>((resolve) => { release = resolve }) }
  }
}

t.test('30 concurrent requests of one agent over two gateways, maxParallel 4: exactly 4 in flight', async (t) => {
  const redis = await redisFor(t)
  const env = { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '5000', AGENT_TIERS: JSON.stringify({ four: { maxParallel: 4 } }) }
  const [a, b] = await Promise.all([gatewayWithGate(t, env), gatewayWithGate(t, env)])
  const { key } = await issueKey(a.app, 'agent-p', { tier: 'four' })
  const send = (g: typeof a) => g.app.inject({ method: 'POST', url: '/held', headers: { 'x-api-key': key } })

  const inFlight = Array.from({ length: 30 }, (_, i) => send(i % 2 === 0 ? a : b))
  // The 26 refusals answer at once; the 4 admitted wait at the gate.
  await waitFor(() => a.entered() + b.entered() === 4, { what: '4 requests inside the handlers' })
  a.open(); b.open()
  const results = await Promise.all(inFlight)
  const statuses = results.map((r) => r.statusCode)
  t.equal(statuses.filter((s) => s === 200).length, 4, 'exactly maxParallel admitted across both gateways')
  t.equal(statuses.filter((s) => s === 429).length, 26, 'every other one refused')
  t.equal(a.entered() + b.entered(), 4, 'no refused request reached a handler')
  const refused = results.find((r) => r.statusCode === 429)!
  t.same(refused.json(), { statusCode: 429, error: 'Too Many Requests', message: 'Agent agent-p already has 4 requests in flight, the most its tier allows; retry when one finishes', code: 'GW_AGENT_PARALLEL_LIMIT' })
  t.equal(refused.headers['retry-after'], '1')

  // Released on response: the next 4 are admitted again, the fifth refused.
  const next = Array.from({ length: 5 }, (_, i) => send(i % 2 === 0 ? a : b))
  await waitFor(() => a.entered() + b.entered() === 8, { what: 'the next 4 inside' })
  a.open(); b.open()
  t.same((await Promise.all(next)).map((r) => r.statusCode).sort(), [200, 200, 200, 200, 429], 'leases came back on response')
  t.equal(await waitFor(async () => (await redisZcard(redis.url, 'gw:leases:{agent-p}')) === 0 ? 'empty' : undefined, { what: 'no lease left' }), 'empty', 'no lease left in Redis')
})

t.test('a lease held by a gateway that never answers expires after AGENT_LEASE_TTL_MS', async (t) => {
  const redis = await redisFor(t)
  const env = { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '5000', AGENT_LEASE_TTL_MS: '700', AGENT_TIERS: JSON.stringify({ one: { maxParallel: 1 } }) }
  const [a, b] = await Promise.all([gatewayWithGate(t, env), gatewayWithGate(t, env)])
  const { key } = await issueKey(a.app, 'agent-q', { tier: 'one' })
  const stuck = a.app.inject({ method: 'POST', url: '/held', headers: { 'x-api-key': key } })
  await waitFor(() => a.entered() === 1, { what: 'the stuck request inside A' })
  const heldAt = Date.now()
  t.equal((await b.app.inject({ method: 'POST', url: '/held', headers: { 'x-api-key': key } })).statusCode, 429, 'B sees A\'s lease')
  // A's request is stuck (as if A had died): after the TTL B admits the agent again (its request enters the handler).
  const attempts: Array<Promise<unknown>> = []
  await waitFor(async () => {
    const res = b.app.inject({ method: 'POST', url: '/held', headers: { 'x-api-key': key } })
    attempts.push(res)
    return Promise.race([res.then((r) => r.statusCode === 200), waitFor(() => b.entered() === 1, { timeoutMs: 200 }).then(() => true, () => false)])
  }, { timeoutMs: 3000, intervalMs: 50, what: 'B to admit the agent after the lease TTL' })
  t.ok(Date.now() - heldAt >= 600, `admitted only after the TTL (${Date.now() - heldAt} ms)`)
  a.open(); b.open()
  await Promise.all([stuck, ...attempts])
})

async function redisZcard (url: string, key: string): Promise<number> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url)
  try { return await client.zcard(key) } finally { client.disconnect() }
}
