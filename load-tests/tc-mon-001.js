// TC-MON-001 metrics accuracy. /metrics is read before and after a known number of iterations; each iteration, for
// a fresh agent and the VU's own user, sends: 1 quota read, 2 token requests that fit the bucket, 1 that does not
// (429), 1 balance read and 1 deposit. Every counter's delta equals what was sent: request counts per route and
// status, tokens spent and refused, 429s by limiter, audit events, lock acquisitions and upstream calls.
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { profileFor } from './lib/profiles.js'
import { clientIp, get, json, post } from './lib/http.js'
import { loginUsers, newRunId } from './lib/auth.js'
import { metricValue, probeHealth, scrape, waitUntil } from './lib/stack.js'
import { exactThresholds, expectExact } from './lib/checks.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-mon-001'
const { vus, iterations } = profileFor(TC)

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429))

/** What `iterations` iterations must add to each series, given the tokens asked per request. */
function expectedDeltas (n, tokens) {
  const requests = (method, route, status) => ['http_request_duration_seconds_count', { method, route, status_code: status }]
  return [
    [`${n} quota reads counted`, ...requests('GET', '/api/quota/:agentId', 200), n],
    [`${2 * n} granted token requests counted`, ...requests('POST', '/api/request', 200), 2 * n],
    [`${n} refused token requests counted`, ...requests('POST', '/api/request', 429), n],
    [`${n} balance reads counted`, ...requests('GET', '/users/:id', 200), n],
    [`${n} deposits counted`, ...requests('POST', '/users/:id/deposit', 200), n],
    [`${2 * n * tokens} tokens spent counted`, 'gateway_quota_tokens_spent_total', {}, 2 * n * tokens],
    [`${n * tokens} tokens refused counted`, 'gateway_quota_tokens_refused_total', {}, n * tokens],
    [`${n} agent-quota 429s counted`, 'gateway_rate_limited_total', { limiter: 'agent_quota' }, n],
    [`${n} quota_exceeded audit events counted`, 'gateway_audit_events_total', { type: 'quota_exceeded' }, n],
    [`${n} lock acquisitions counted`, 'gateway_lock_acquisitions_total', { result: 'acquired' }, n],
    [`${2 * n} successful user-upstream calls counted`, 'gateway_upstream_request_duration_seconds_count', { upstream: 'user', outcome: 'success' }, 2 * n]
  ]
}

export const options = {
  scenarios: {
    known_traffic: { executor: 'shared-iterations', exec: 'knownTraffic', vus, iterations, maxDuration: '40s' }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    ...exactThresholds(expectedDeltas(0, 0).length)
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const runId = newRunId()
  const users = loginUsers(runId, 'mon', vus)
  const quota = json(get('/api/quota/:agentId', { agentId: `mon-${runId}-probe` }, { ip: clientIp(runId, 0) }))
  // Half the bucket per request: two fit, the third does not, as long as the refill in between stays below half.
  const tokens = Math.floor(quota.capacity / 2)
  const before = scrape()
  return { runId, users, tokens, before: expectedDeltas(0, 0).map(([, name, labels]) => metricValue(before, name, labels)) }
}

export function knownTraffic ({ runId, users, tokens }) {
  const user = users[exec.vu.idInTest - 1]
  const ip = clientIp(runId, exec.vu.idInTest)
  const agentId = `mon-${runId}-${exec.scenario.iterationInTest}`
  check(get('/api/quota/:agentId', { agentId }, { ip }), { 'the quota read gets 200': (r) => r.status === 200 })
  for (let i = 0; i < 2; i++) {
    check(post('/api/request', {}, { ip, body: { agentId, tokens } }), { 'a request that fits the bucket gets 200': (r) => r.status === 200 })
  }
  check(post('/api/request', {}, { ip, body: { agentId, tokens } }), { 'a request past the bucket gets 429': (r) => r.status === 429 })
  check(get('/users/:id', { id: user.userId }, { token: user.token }), { 'the balance read gets 200': (r) => r.status === 200 })
  check(post('/users/:id/deposit', { id: user.userId }, { token: user.token, body: { amount: 1 } }), { 'the deposit gets 200': (r) => r.status === 200 })
}

export function teardown ({ tokens, before }) {
  const expected = expectedDeltas(iterations, tokens)
  const deltas = () => { const now = scrape(); return expected.map(([, name, labels], i) => metricValue(now, name, labels) - before[i]) }
  // Series are updated when a response has been sent, so the last ones may land a moment after k6 has its answer.
  let last
  waitUntil(() => { last = deltas(); return last.every((d, i) => d === expected[i][3]) }, 3000)
  expected.forEach(([what, , , value], i) => expectExact(what, last[i], value))
}

export const handleSummary = summaryFor(TC)
