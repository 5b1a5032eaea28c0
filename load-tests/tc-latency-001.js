// TC-LATENCY-001 latency per service. A steady arrival rate per service, below saturation, as three scenarios:
// auth (a login), user (a balance read), order (create an order, read it back). p90 and p99 of each service's
// requests are held under thresholds from env: LATENCY_<SERVICE>_P90_MS / _P99_MS, else LATENCY_P90_MS /
// LATENCY_P99_MS, else the profile's bounds (ci 200 / 750 ms: a shared 2-core box; full 100 / 300 ms).
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { envNumber } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { get, json, post } from './lib/http.js'
import { login, userName } from './lib/auth.js'
import { loadSetup } from './lib/setup.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-latency-001'
const { ratePerService, duration, maxVUs, p90Ms, p99Ms } = profileFor(TC)
const SERVICES = ['auth', 'user', 'order']
const limit = (service, p) => envNumber(`LATENCY_${service.toUpperCase()}_P${p}_MS`, envNumber(`LATENCY_P${p}_MS`, p === 90 ? p90Ms : p99Ms))

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }))

const steady = (exec) => ({ executor: 'constant-arrival-rate', exec, rate: ratePerService, timeUnit: '1s', duration, preAllocatedVUs: Math.ceil(maxVUs / 2), maxVUs })

export const options = {
  scenarios: { auth: steady('auth'), user: steady('user'), order: steady('order') },
  thresholds: {
    checks: ['rate==1'],
    tc_unexpected_errors: ['rate==0'],
    // Each scenario calls one service, so {scenario:<service>} is that service's measured requests without setup()'s
    // logins and warm-up.
    ...Object.fromEntries(SERVICES.map((s) => [`http_req_duration{scenario:${s}}`, [`p(90)<${limit(s, 90)}`, `p(99)<${limit(s, 99)}`]]))
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  // Enough users that no two order writes for one user overlap at this rate (that would be a lock 503, not latency).
  return loadSetup('lat', Math.max(20, maxVUs * 2))
}

export function auth ({ runId }) {
  login(userName(runId, 'latauth', exec.scenario.iterationInTest))
}

export function user ({ users }) {
  const u = users[exec.scenario.iterationInTest % users.length]
  check(get('/users/:id', { id: u.userId }, { token: u.token }), { 'a balance read gets 200': (r) => r.status === 200 })
}

export function order ({ users }) {
  const u = users[exec.scenario.iterationInTest % users.length]
  const created = post('/orders', {}, { token: u.token, body: { userId: u.userId, item: 'latency-probe', quantity: 1, unitPrice: 100 } })
  if (!check(created, { 'an order is created': (r) => r.status === 201 })) return
  check(get('/orders/:id', { id: json(created).orderId }, { token: u.token }), { 'the order reads back': (r) => r.status === 200 })
}

export const handleSummary = summaryFor(TC)
