// TC-CB-002 the circuit breaker recovers. The user stub fails until BREAKER_FAILURE_THRESHOLD calls have opened the
// circuit, then it is healed. After BREAKER_RESET_TIMEOUT_MS the circuit is half-open; BREAKER_SUCCESS_THRESHOLD (3)
// successful calls close it, and normal traffic from several clients is answered 200 again.
import http from 'k6/http'
import { check, sleep } from 'k6'
import { GATEWAY, USER_ADMIN_URL } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { errorCode, get } from './lib/http.js'
import { loginUsers, newRunId } from './lib/auth.js'
import { probeHealth, readiness, setFault, waitUntil } from './lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-cb-002'
const { vus, duration } = profileFor(TC)
const RESET_S = GATEWAY.breakerResetTimeoutMs / 1000

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 502, 503))

export const options = {
  scenarios: {
    recover: { executor: 'per-vu-iterations', exec: 'recover', vus: 1, iterations: 1, maxDuration: `${Math.ceil(RESET_S) + 20}s` },
    // Starts once the circuit must have closed: the reset timeout plus a margin for the three trial calls.
    normal_traffic: { executor: 'constant-vus', exec: 'normalTraffic', vus, duration, startTime: `${Math.ceil(RESET_S) + 3}s` }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    'http_req_duration{scenario:normal_traffic}': ['p(95)<200', 'p(99)<500']
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const users = loginUsers(newRunId(), 'cb2', vus)
  const [user] = users
  setFault(USER_ADMIN_URL, 'fail')
  for (let i = 0; i < GATEWAY.breakerFailureThreshold; i++) {
    check(get('/users/:id', { id: user.userId }, { token: user.token, expected: [502] }), { 'each failure before the circuit opens is a 502': (r) => r.status === 502 })
  }
  check(get('/users/:id', { id: user.userId }, { token: user.token }), { 'then the circuit is open (503 GW_CIRCUIT_OPEN)': (r) => r.status === 503 && errorCode(r) === 'GW_CIRCUIT_OPEN' })
  setFault(USER_ADMIN_URL, 'ok')
  return { users }
}

export function recover ({ users }) {
  const [user] = users
  const halfOpen = waitUntil(() => readiness().upstreams.user.breaker === 'half_open', GATEWAY.breakerResetTimeoutMs + 5000)
  check(halfOpen, { 'after the reset timeout the circuit is half-open': (v) => v === true })
  for (let i = 0; i < GATEWAY.breakerSuccessThreshold; i++) {
    check(get('/users/:id', { id: user.userId }, { token: user.token }), { 'a trial call through the half-open circuit gets 200': (r) => r.status === 200 })
  }
  check(readiness().upstreams.user.breaker, { [`after ${GATEWAY.breakerSuccessThreshold} successes the circuit is closed`]: (s) => s === 'closed' })
}

export function normalTraffic ({ users }) {
  const user = users[(__VU - 1) % users.length]
  check(get('/users/:id', { id: user.userId }, { token: user.token }), { 'normal traffic gets 200 again': (r) => r.status === 200 })
  sleep(0.05)
}

export function teardown () {
  setFault(USER_ADMIN_URL, 'ok')
}

export const handleSummary = summaryFor(TC)
