// Dashboard traffic: a short k6 run whose only job is to give every panel of grafana/dashboards/*.json data, for
// scripts/prove-dashboards.mjs. 200s and 201s on all three upstreams, 401s, 404s, demo-limiter 429s, agent-quota refusals, one lock conflict burst
// (the user stub slowed, six deposits for one user at once) and an open user breaker (the user stub failing).
// Needs the stubs' fault admin (STUB_FAULTS=1) on USER_ADMIN_URL, and a gateway with a short breaker reset.
import http from 'k6/http'
import { check, sleep } from 'k6'
import { fastFailDuration, lockConflicts, quotaRefused, quotaTokensSpent, rateLimited, unexpectedErrors } from '../../load-tests/lib/metrics.js'

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/$/, '')
const USER_ADMIN_URL = (__ENV.USER_ADMIN_URL || 'http://127.0.0.1:3002').replace(/\/$/, '')
const DURATION = __ENV.DURATION || '20s'
const BROWSERS = 4
// __VU numbers run across all scenarios (the two one-VU scenarios take some of 1..6), so one user per VU number:
// two browsing VUs never share a user, and the only lock conflicts are the burst's.
const ALL_VUS = BROWSERS + 2
const PASSWORD = 'dashboard-traffic-password'
const RUN = __ENV.RUN_ID || Date.now().toString(36)

// 401, 429 and 503 are what this run provokes on purpose; 502 (the failures that open the breaker) stays a failure.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 401, 404, 429, 503))

export const options = {
  scenarios: {
    browse: { executor: 'constant-vus', exec: 'browse', vus: BROWSERS, duration: DURATION },
    lock_conflict: { executor: 'per-vu-iterations', exec: 'lockConflict', vus: 1, iterations: 1, startTime: '2s', maxDuration: '15s' },
    breaker: { executor: 'per-vu-iterations', exec: 'tripBreaker', vus: 1, iterations: 1, startTime: '6s', maxDuration: '15s' }
  },
  // The run is only useful if it produced what the panels show.
  thresholds: {
    tc_lock_conflicts: ['count>0'],
    tc_quota_refused: ['count>0'],
    tc_rate_limited: ['rate>0'],
    'checks{scenario:breaker}': ['rate==1'],
    'checks{scenario:lock_conflict}': ['rate==1']
  }
}

const ADMIN = { tags: { name: 'admin' }, headers: { 'content-type': 'application/json' }, responseCallback: http.expectedStatuses(200) }
const JSON_HEADERS = { 'content-type': 'application/json' }
const bearer = (token) => ({ ...JSON_HEADERS, authorization: `Bearer ${token}` })

function setFault (mode, delayMs) {
  const res = http.post(`${USER_ADMIN_URL}/__fault`, JSON.stringify(delayMs === undefined ? { mode } : { mode, delayMs }), ADMIN)
  if (res.status !== 200) throw new Error(`POST ${USER_ADMIN_URL}/__fault answered ${res.status} ${res.error || ''} (the stubs need STUB_FAULTS=1)`)
}

function login (username) {
  const res = http.post(`${BASE_URL}/auth/login`, JSON.stringify({ username, password: PASSWORD }), { headers: JSON_HEADERS, tags: { name: 'POST /auth/login' } })
  if (res.status !== 200) throw new Error(`login of ${username} answered ${res.status}: ${String(res.body).slice(0, 200)}`)
  return res.json().token
}

/** Counts what every answer means for the shared TC metrics. */
function record (res) {
  rateLimited.add(res.status === 429)
  unexpectedErrors.add(res.status >= 400 && ![401, 404, 429, 503].includes(res.status))
  return res
}

export function setup () {
  const health = http.get(`${BASE_URL}/health`, { tags: { name: 'admin' } })
  if (health.status !== 200) throw new Error(`gateway at ${BASE_URL} is not healthy: GET /health answered ${health.status} ${health.error || ''}`)
  setFault('ok')
  const users = []
  for (let n = 0; n < ALL_VUS; n++) {
    const userId = `load_test_dash_${RUN}_${n}`
    users.push({ userId, token: login(userId) })
  }
  const lockUser = `load_test_dash_${RUN}_lock`
  return { users, lock: { userId: lockUser, token: login(lockUser) } }
}

export function browse (data) {
  const { userId, token } = data.users[__VU - 1]
  record(http.get(`${BASE_URL}/users/${userId}`, { headers: bearer(token), tags: { name: 'GET /users/:id' } }))
  record(http.post(`${BASE_URL}/users/${userId}/deposit`, JSON.stringify({ amount: 1 }), { headers: bearer(token), tags: { name: 'POST /users/:id/deposit' } }))
  record(http.post(`${BASE_URL}/orders`, JSON.stringify({ userId, item: 'dashboard pen', quantity: 1, unitPrice: 1 }), { headers: bearer(token), tags: { name: 'POST /orders' } }))
  record(http.get(`${BASE_URL}/users/${userId}`, { tags: { name: 'GET /users/:id (no token)' } }))
  record(http.post(`${BASE_URL}/auth/login`, JSON.stringify({ username: userId, password: 'wrong-password' }), { headers: JSON_HEADERS, tags: { name: 'POST /auth/login (wrong password)' } }))
  record(http.get(`${BASE_URL}/api/test-rate-limit`, { tags: { name: 'GET /api/test-rate-limit' } }))
  record(http.get(`${BASE_URL}/no/such/route`, { tags: { name: 'GET unknown route' } }))
  const tokens = 10
  const quota = record(http.post(`${BASE_URL}/api/request`, JSON.stringify({ agentId: `dash-agent-${__VU}`, tokens }), { headers: JSON_HEADERS, tags: { name: 'POST /api/request' } }))
  if (quota.status === 200) quotaTokensSpent.add(tokens)
  if (quota.status === 429) quotaRefused.add(1)
  sleep(0.2)
}

export function lockConflict (data) {
  // A slow user stub keeps the first deposit's lock held while the other five arrive.
  setFault('slow', 400)
  try {
    const body = JSON.stringify({ amount: 1 })
    const params = { headers: bearer(data.lock.token), tags: { name: 'POST /users/:id/deposit (burst)' } }
    const answers = http.batch(Array.from({ length: 6 }, () => ['POST', `${BASE_URL}/users/${data.lock.userId}/deposit`, body, params]))
    let conflicts = 0
    for (const res of answers) {
      record(res)
      if (res.status === 503 && res.json('code') === 'GW_USER_LOCKED') conflicts++
    }
    lockConflicts.add(conflicts)
    check(conflicts, { 'a burst of deposits for one user meets the lock': (n) => n > 0 })
  } finally {
    setFault('ok')
  }
}

export function tripBreaker (data) {
  const { userId, token } = data.lock
  setFault('fail')
  let open = 0
  try {
    for (let i = 0; i < 12; i++) {
      const res = record(http.get(`${BASE_URL}/users/${userId}`, { headers: bearer(token), tags: { name: 'GET /users/:id (breaker)' } }))
      if (res.status === 503 && res.json('code') === 'GW_CIRCUIT_OPEN') {
        open++
        fastFailDuration.add(res.timings.duration)
      }
    }
  } finally {
    setFault('ok')
  }
  check(open, { 'the failing user stub opens its breaker (503 GW_CIRCUIT_OPEN)': (n) => n > 0 })
}
