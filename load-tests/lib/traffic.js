// Traffic shapes the load TCs share: token requests by agents, a weighted mix of endpoints, and the phase of a run
// (so thresholds can hold per phase, e.g. `http_req_duration{phase:recovery}`).
import { check } from 'k6'
import exec from 'k6/execution'
import { get, json, post } from './http.js'
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
