// TC-CB-001 the circuit breaker trips. The user stub is faulted through its admin endpoint (CB_FAULT, default
// "hang": it never answers, so each call costs the whole USER_TIMEOUT_MS). BREAKER_FAILURE_THRESHOLD (5) calls in
// flight together fail (504, or 502 with CB_FAULT=fail) and open the circuit; from then on every call is a 503
// GW_CIRCUIT_OPEN with Retry-After, answered in a few ms (p95 far below the upstream timeout), and none reaches the stub.
import http from 'k6/http'
import { check } from 'k6'
import { GATEWAY, USER_ADMIN_URL, envNumber } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { callAll, errorCode, get } from './lib/http.js'
import { login, newRunId, userName } from './lib/auth.js'
import { probeHealth, readiness, served, setFault } from './lib/stack.js'
import { fastFailDuration } from './lib/metrics.js'
import { exactThresholds, expectExact } from './lib/checks.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-cb-001'
const { vus, iterations } = profileFor(TC)
const FAULT = __ENV.CB_FAULT || 'hang'
const FAILURE_STATUS = { hang: 504, fail: 502 }[FAULT]
if (!FAILURE_STATUS) throw new Error(`CB_FAULT must be hang or fail, got "${FAULT}"`)
const FAILURES = GATEWAY.breakerFailureThreshold
// "Far below the upstream timeout": p95 an order of magnitude under it, p99 a quarter of it.
const FAST_FAIL_P95_MS = envNumber('CB_FAST_FAIL_P95_MS', GATEWAY.userTimeoutMs / 10)
const FAST_FAIL_P99_MS = envNumber('CB_FAST_FAIL_P99_MS', GATEWAY.userTimeoutMs / 4)

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, FAILURE_STATUS, 503))

export const options = {
  setupTimeout: `${Math.ceil(GATEWAY.userTimeoutMs / 1000) + 30}s`,
  batchPerHost: FAILURES,
  scenarios: {
    fast_fail: { executor: 'shared-iterations', exec: 'fastFail', vus, iterations, maxDuration: '40s' }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    tc_fast_fail_duration: [`p(95)<${FAST_FAIL_P95_MS}`, `p(99)<${FAST_FAIL_P99_MS}`],
    ...exactThresholds(1)
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const user = login(userName(newRunId(), 'cb1', 0))
  setFault(USER_ADMIN_URL, FAULT)
  const servedBefore = served(USER_ADMIN_URL)
  // The failures go together, so with "hang" the trip costs one upstream timeout, not five.
  const failures = callAll(Array.from({ length: FAILURES }, () =>
    ['GET', '/users/:id', { id: user.userId }, { token: user.token, expected: [FAILURE_STATUS], timeout: `${GATEWAY.userTimeoutMs + 10000}ms` }]))
  for (const res of failures) check(res, { [`each failure before the circuit opens is a ${FAILURE_STATUS}`]: (r) => r.status === FAILURE_STATUS })
  const state = readiness().upstreams.user.breaker
  if (state !== 'open') throw new Error(`after ${FAILURES} failures the user circuit is "${state}", not "open"`)
  return { user, servedBefore }
}

export function fastFail ({ user }) {
  const res = get('/users/:id', { id: user.userId }, { token: user.token })
  check(res, {
    'an open circuit answers 503 GW_CIRCUIT_OPEN': (r) => r.status === 503 && errorCode(r) === 'GW_CIRCUIT_OPEN',
    'the 503 carries Retry-After': (r) => Number(r.headers['Retry-After']) > 0
  })
  fastFailDuration.add(res.timings.duration)
}

export function teardown ({ servedBefore }) {
  expectExact('only the failures that opened the circuit reached the user stub', served(USER_ADMIN_URL) - servedBefore, FAILURES)
  setFault(USER_ADMIN_URL, 'ok')
}

export const handleSummary = summaryFor(TC)
