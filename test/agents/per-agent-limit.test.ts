// Keyed agents are limited per agent (their tier's requests per minute), not per client address: 300 agents behind
// one address each get their own quota while unkeyed traffic from that address keeps the per-address limit.
import t from 'tap'
import { build, gatewayProcessFor, redisFor } from '../helper.js'
import { ADMIN_TOKEN, spendOver } from './helper.js'

t.test('300 keyed agents from one address, per-address limit 5: every agent gets its own quota (Redis, process)', async (t) => {
  const redis = await redisFor(t)
  const gateway = await gatewayProcessFor(t, {
    AGENT_AUTH: 'key',
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: '5000',
    ADMIN_TOKEN,
    RATE_LIMIT_MAX: '5',
    AGENT_QUOTA_CAPACITY: '3',
    AGENT_QUOTA_REFILL_PER_SECOND: '0.001',
    AGENT_QUOTA_REQUESTS_PER_MINUTE: '10'
  })
  // Keys go straight into the shared store (the admin API sits behind the address limit, which this test exhausts).
  const app = await build(t, { AGENT_AUTH: 'key', REDIS_URL: redis.url })
  const agents = await Promise.all(Array.from({ length: 300 }, (_, i) => app.agentKeys.issue(`agent-${i}.5`)))

  const rounds = []
  for (let round = 0; round < 4; round++) {
    rounds.push(await Promise.all(agents.map((a) => spendOver(gateway.url, 1, { key: a.key }))))
  }
  t.same(rounds.slice(0, 3).map((r) => r.filter((x) => x.status === 200).length), [300, 300, 300], 'each of 300 agents spends its 3 tokens: 900 requests from one address past a limit of 5')
  t.ok(rounds[3].every((x) => x.status === 429 && x.body.code === 'GW_QUOTA_EXCEEDED'), 'the 4th token of each agent: its own bucket refuses (GW_QUOTA_EXCEEDED), not the address limit')
  t.equal(rounds[0][0].headers.get('x-ratelimit-limit'), '10', 'the limit shown is the tier\'s requests per minute')

  const anonymous = []
  for (let i = 0; i < 6; i++) anonymous.push((await fetch(`${gateway.url}/api/quota/x`)).status)
  t.same(anonymous, [401, 401, 401, 401, 401, 429], 'unkeyed traffic from the same address keeps the per-address limit (5)')
})
