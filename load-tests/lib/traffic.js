// Traffic shapes the load TCs share: token requests by agents, a weighted mix of endpoints, and the phase of a run
// (so thresholds can hold per phase, e.g. `http_req_duration{phase:recovery}`).
import { check } from 'k6'
import exec from 'k6/execution'
import { clientIp, get, json, post } from './http.js'
import { login, userName } from './auth.js'
import { quotaRefused, quotaTokensSpent } from './metrics.js'

export const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1))

/** POST /api/request for `agentId`: 200 (tokens granted) and 429 (bucket short) are both correct answers. */
export function spendTokens (agentId, tokens, { ip, tags } = {}) {
  const res = post('/api/request', {}, { ip, tags, body: { agentId, tokens } })
  check(res, { 'a token request gets 200 or 429': (r) => r.status === 200 || r.status === 429 })
  if (res.status === 200) quotaTokensSpent.add(tokens, tags)
  if (res.status === 429) quotaRefused.add(1, tags)
  return res
}

/** One request of a typical client mix: token requests, quota reads, balance reads, orders, the demo route. */
export function mixedRequest ({ agentId, user, ip, tags }) {
  const roll = Math.random()
  if (roll < 0.5) return spendTokens(agentId, randomInt(1, 5), { ip, tags })
  if (roll < 0.7) {
    return check(get('/api/quota/:agentId', { agentId }, { ip, tags }), { 'a quota read gets 200': (r) => r.status === 200 })
  }
  if (roll < 0.85) {
    return check(get('/users/:id', { id: user.userId }, { token: user.token, tags }), { 'a balance read gets 200': (r) => r.status === 200 })
  }
  if (roll < 0.95) {
    const res = post('/orders', {}, { token: user.token, tags, body: { userId: user.userId, item: 'load-test-widget', quantity: randomInt(1, 3), unitPrice: 250 } })
    return check(res, { 'an order is created (201, or 503 while the same user has one in flight)': (r) => r.status === 201 || r.status === 200 || r.status === 503 }) &&
      res.status !== 503 && check(json(res), { 'a created order has an ord_ id': (o) => /^ord_/.test(o?.orderId ?? '') })
  }
  return check(get('/api/test-rate-limit', {}, { ip, tags }), { 'the demo route gets 200 or 429': (r) => r.status === 200 || r.status === 429 })
}

/**
 * The phase of the current scenario by elapsed seconds: `phases` is [[name, untilSecond], …], the last one open-ended.
 * Tag requests with it ({ phase }) to hold thresholds per phase.
 */
export function phaseOf (phases) {
  const elapsedS = (Date.now() - exec.scenario.startTime) / 1000
  for (const [name, until] of phases) if (elapsedS < until) return name
  return phases[phases.length - 1][0]
}

/**
 * For setup() of the load TCs: every route of their traffic `rounds` times, one request after the other, by a user
 * and agent of its own, so a freshly started gateway's first requests (JIT, first upstream and Redis connections)
 * are not what the latency thresholds judge. Setup requests carry no scenario or phase tag, and those thresholds
 * hold on such tags. Only 200/201 are expected: anything else throws, as a broken stack should before the load.
 */
export function warmUp (runId, rounds = 10) {
  const user = login(userName(runId, 'warmup', 0))
  const ip = clientIp(runId, 9_999_999)
  const agentId = `warmup-${runId}`
  const expect = (res, what) => {
    if (res.status !== 200 && res.status !== 201) throw new Error(`warm-up: ${what} answered ${res.status}: ${String(res.body).slice(0, 200)}`)
    return res
  }
  for (let i = 0; i < rounds; i++) {
    expect(get('/api/quota/:agentId', { agentId }, { ip }), 'GET /api/quota/:agentId')
    expect(post('/api/request', {}, { ip, body: { agentId, tokens: 1 } }), 'POST /api/request')
    expect(get('/users/:id', { id: user.userId }, { token: user.token }), 'GET /users/:id')
    expect(post('/users/:id/deposit', { id: user.userId }, { token: user.token, body: { amount: 1 } }), 'POST /users/:id/deposit')
    const order = expect(post('/orders', {}, { token: user.token, body: { userId: user.userId, item: 'warm-up', quantity: 1, unitPrice: 1 } }), 'POST /orders')
    expect(get('/orders/:id', { id: json(order).orderId }, { token: user.token }), 'GET /orders/:id')
  }
}
