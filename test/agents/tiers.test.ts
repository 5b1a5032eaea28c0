// Named tiers: validated at start, assigned per key, a tier change applies to the next request, per-tier request rate.
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { build, JWT_SECRET } from '../helper.js'
import { ADMIN_TOKEN, admin, issueKey } from './helper.js'

const TIERS = JSON.stringify({
  gold: { capacity: 1000, refillPerSecond: 0.001, maxTokensPerRequest: 500 },
  tiny: { capacity: 5, refillPerSecond: 0.001, requestsPerMinute: 3 }
})

t.test('AGENT_TIERS is validated at start with a message naming it', async (t) => {
  const load = (value: string) => () => loadConfig({ JWT_SECRET, AGENT_TIERS: value })
  t.throws(load('{gold'), /^AGENT_TIERS is not valid JSON; expected JSON like/)
  t.throws(load('[1]'), /^AGENT_TIERS must be a JSON object of tiers/)
  t.throws(load('{"Gold!":{}}'), /^AGENT_TIERS tier name "Gold!" must match/)
  t.throws(load('{"gold":{"capacity":0}}'), /^AGENT_TIERS tier "gold".capacity must be a positive integer/)
  t.throws(load('{"gold":{"maxParallel":1.5}}'), /^AGENT_TIERS tier "gold".maxParallel must be a positive integer/)
  t.throws(load('{"gold":{"speed":1}}'), /^AGENT_TIERS tier "gold" has an unknown field "speed"/)
  t.throws(load('{"gold":{"refillPerSecond":0.0001}}'), /^AGENT_TIERS tier "gold": refill rate 0.0001 tokens\/s must be a positive multiple of 0.001/)
  t.doesNotThrow(load(TIERS))
})

t.test('a key\'s tier sets its bucket and request rate; a tier change applies to the next request', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN, AGENT_TIERS: TIERS, AGENT_QUOTA_REFILL_PER_SECOND: '0.001' })
  const gold = await issueKey(app, 'agent-g', { tier: 'gold' })
  t.equal(gold.tier, 'gold')
  const big = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': gold.key }, payload: { tokens: 400 } })
  t.same(big.json(), { allowed: true, agentId: 'agent-g', spent: 400, remaining: 600, capacity: 1000 }, 'gold: capacity 1000, 400 tokens in one request')
  const quota = await app.inject({ method: 'GET', url: '/api/quota/agent-g', headers: { 'x-api-key': gold.key } })
  t.match(quota.json(), { agentId: 'agent-g', tier: 'gold', capacity: 1000, remaining: 600, refillPerSecond: 0.001 })

  const plain = await issueKey(app, 'agent-d')
  const tooMany = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': plain.key }, payload: { tokens: 400 } })
  t.same(tooMany.json(), { statusCode: 400, error: 'Bad Request', message: 'tokens must be at most 50 for tier default', code: 'GW_BAD_REQUEST' }, 'default tier: at most AGENT_QUOTA_MAX_TOKENS_PER_REQUEST')

  // Re-tier the gold key to tiny: its next request sees capacity 5 (the 600 left are capped to 5).
  const patched = await app.inject({ method: 'PATCH', url: `/admin/keys/${gold.keyId}`, headers: admin, payload: { tier: 'tiny' } })
  t.match(patched.json(), { keyId: gold.keyId, tier: 'tiny' })
  const next = await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': gold.key }, payload: { tokens: 1 } })
  t.same(next.json(), { allowed: true, agentId: 'agent-g', spent: 1, remaining: 4, capacity: 5 }, 'the next request runs on the new tier')
  t.equal(next.headers['x-ratelimit-limit'], '3', 'and at its requests per minute (this agent\'s window counts its earlier requests too)')
  t.equal((await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': gold.key }, payload: { tokens: 1 } })).statusCode, 429, 'its 4th request this minute: 429')

  const tiny = await issueKey(app, 'agent-t', { tier: 'tiny' })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'POST', url: '/api/request', headers: { 'x-api-key': tiny.key }, payload: { tokens: 1 } })).statusCode)
  t.same(statuses, [200, 200, 200, 429], 'tiny: 3 requests per minute, then 429 although tokens remain')
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/keys/${gold.keyId}`, headers: admin, payload: { tier: 'nope' } })).statusCode, 400, 'unknown tier: 400')
})
