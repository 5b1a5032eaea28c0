// maxParallel exact across two gateway PROCESSES on one Redis: streamed model calls held open by a slow model stub
// (MODEL_CHUNK_DELAY_MS), 12 at once over both gateways for an agent whose tier allows 3 → exactly 3 admitted.
import t from 'tap'
import { gatewayProcessFor, redisFor, startStub, waitFor } from '../helper.js'
import { ADMIN_TOKEN, issueKey } from './helper.js'

t.test('12 concurrent streamed calls of one agent over two gateway processes, maxParallel 3: exactly 3 admitted', async (t) => {
  const redis = await redisFor(t)
  const model = await startStub('model', { MODEL_CHUNK_DELAY_MS: '250' })
  t.teardown(() => model.stop())
  const env = {
    AGENT_AUTH: 'key',
    ADMIN_TOKEN,
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: '5000',
    MODEL_URL: model.url,
    AGENT_TIERS: JSON.stringify({ three: { maxParallel: 3, capacity: 100000, maxTokensPerRequest: 64 } })
  }
  const gateways = await Promise.all([gatewayProcessFor(t, env), gatewayProcessFor(t, env)])
  const { key } = await issueKey(gateways[0].url, 'agent-par.1', { tier: 'three' })

  const call = (url: string) => fetch(`${url}/api/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ model: 'stub', messages: [{ role: 'user', content: 'hold the line' }], max_tokens: 8, stream: true })
  }).then(async (res) => ({ status: res.status, body: await res.text() }))
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => call(gateways[i % 2].url)))
  const statuses = results.map((r) => r.status)
  t.equal(statuses.filter((s) => s === 200).length, 3, `exactly maxParallel admitted (${statuses.join(' ')})`)
  t.equal(statuses.filter((s) => s === 429).length, 9, 'the other 9 refused')
  t.match(JSON.parse(results.find((r) => r.status === 429)!.body), { code: 'GW_AGENT_PARALLEL_LIMIT' })
  // Leases are released when the streams end: the agent gets its 3 slots back.
  await waitFor(async () => (await call(gateways[1].url)).status === 200, { timeoutMs: 10_000, what: 'a call admitted after the streams ended' })
})
