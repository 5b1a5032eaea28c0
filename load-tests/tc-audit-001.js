// TC-AUDIT-001 audit capture under load. Each iteration, for a fresh load_test_ user and client address, causes a
// known set of security events: a login (login_success), a wrong password (login_failure), a read without a token
// and a read of another user (2 × access_denied), five calls past the demo limit (5 × rate_limit_exceeded: the
// first on its own line, the rest summed into `rate_limit_exceeded_summary` lines whose counts must add up) and one
// token request past the bucket (quota_exceeded). k6 counts each event the gateway's answer proves (tc_audit_expected by
// type); `npm run load` then counts the lines of AUDIT_LOG_PATH by type and requires the same numbers. Here the
// teardown requires the same deltas of gateway_audit_events_total on /metrics.
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { GATEWAY } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp, get, json, post } from './lib/http.js'
import { TEST_PASSWORD, login, newRunId, userName } from './lib/auth.js'
import { metricValue, probeHealth, scrape, waitUntil } from './lib/stack.js'
import { auditExpected } from './lib/report-metrics.js'
import { exactThresholds, expectExact } from './lib/checks.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-audit-001'
const { vus, iterations } = profileFor(TC)
// Denials of one key in a row: the audit log sums all but the first, and the sums must be exact.
const DENIALS_PAST_LIMIT = 5
const EVENTS_PER_ITERATION = { login_success: 1, login_failure: 1, access_denied: 2, rate_limit_exceeded: DENIALS_PAST_LIMIT, quota_exceeded: 1 }
const TYPES = Object.keys(EVENTS_PER_ITERATION)

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 401, 403, 429))

export const options = {
  scenarios: {
    security_events: { executor: 'shared-iterations', exec: 'securityEvents', vus, iterations, maxDuration: '40s' }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    ...exactThresholds(TYPES.length),
    // One threshold per type puts each type's count in the summary JSON, where the runner reads it.
    ...Object.fromEntries(TYPES.map((type) => [`tc_audit_expected{type:${type}}`, [`count==${iterations * EVENTS_PER_ITERATION[type]}`]]))
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const runId = newRunId()
  const quota = json(get('/api/quota/:agentId', { agentId: `aud-${runId}-probe` }, { ip: clientIp(runId, 0) }))
  const before = scrape()
  return { runId, tokens: Math.floor(quota.capacity / 2), before: TYPES.map((type) => metricValue(before, 'gateway_audit_events_total', { type })) }
}

/** Counts an event when the gateway's answer proves it happened. */
function proves (res, status, type, name) {
  const ok = check(res, { [name]: (r) => r.status === status })
  if (ok) auditExpected.add(1, { type })
}

export function securityEvents ({ runId, tokens }) {
  const n = exec.scenario.iterationInTest
  const ip = clientIp(runId, n + 1)
  const user = login(userName(runId, 'aud', n), { ip })
  auditExpected.add(1, { type: 'login_success' })
  proves(post('/auth/login', {}, { ip, body: { username: user.userId, password: `${TEST_PASSWORD}-wrong` }, expected: [401] }),
    401, 'login_failure', 'a wrong password gets 401')
  proves(get('/users/:id', { id: user.userId }, { ip, expected: [401] }), 401, 'access_denied', 'a read without a token gets 401')
  proves(get('/users/:id', { id: userName(runId, 'aud', 'other') }, { ip, token: user.token, expected: [403] }),
    403, 'access_denied', "a read of another user's account gets 403")
  for (let i = 0; i < GATEWAY.rateLimitDemoMax; i++) {
    check(get('/api/test-rate-limit', {}, { ip }), { 'the demo route answers 200 within its limit': (r) => r.status === 200 })
  }
  for (let i = 0; i < DENIALS_PAST_LIMIT; i++) {
    proves(get('/api/test-rate-limit', {}, { ip }), 429, 'rate_limit_exceeded', 'a call past the demo limit gets 429')
  }
  const agentId = `aud-${runId}-${n}`
  for (let i = 0; i < 2; i++) {
    check(post('/api/request', {}, { ip, body: { agentId, tokens } }), { 'a token request that fits the bucket gets 200': (r) => r.status === 200 })
  }
  proves(post('/api/request', {}, { ip, body: { agentId, tokens } }), 429, 'quota_exceeded', 'a token request past the bucket gets 429')
}

export function teardown ({ before }) {
  const expected = TYPES.map((type) => iterations * EVENTS_PER_ITERATION[type])
  let deltas
  waitUntil(() => {
    const now = scrape()
    deltas = TYPES.map((type, i) => metricValue(now, 'gateway_audit_events_total', { type }) - before[i])
    return deltas.every((d, i) => d === expected[i])
  }, 3000)
  TYPES.forEach((type, i) => expectExact(`the gateway counted ${expected[i]} ${type} audit events`, deltas[i], expected[i]))
}

export const handleSummary = summaryFor(TC)
