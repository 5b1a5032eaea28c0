// TC-RL-001 rate-limit enforcement. Each client (a logged-in user; the limiter keys on the user) sends
// RATE_LIMIT_MAX + extra requests in one window, one after the other: the first RATE_LIMIT_MAX are answered 200,
// every one after them 429 with Retry-After, and not one request past the limit reaches the user stub.
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { GATEWAY, USER_ADMIN_URL } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp, get } from './lib/http.js'
import { loginUsers, newRunId } from './lib/auth.js'
import { assertRateLimit, probeHealth, served } from './lib/stack.js'
import { exactThresholds, expectExact } from './lib/checks.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-rl-001'
const { clients, extraRequests } = profileFor(TC)
const LIMIT = GATEWAY.rateLimitMax

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429))

export const options = {
  scenarios: {
    over_the_limit: { executor: 'per-vu-iterations', exec: 'overTheLimit', vus: clients, iterations: LIMIT + extraRequests, maxDuration: '50s' }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    ...exactThresholds(1),
    // A sanity bound (the TC is about counts): 429s are answered before the upstream, 200s go through it.
    'http_req_duration{name:GET /users/:id}': ['p(95)<300', 'p(99)<1000']
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const runId = newRunId()
  assertRateLimit(LIMIT, clientIp(runId, 999999)) // a throwaway client, so the TC's own windows stay untouched
  const users = loginUsers(runId, 'rl1', clients)
  return { users, servedBefore: served(USER_ADMIN_URL) }
}

export function overTheLimit ({ users }) {
  const user = users[exec.vu.idInTest - 1]
  const n = exec.vu.iterationInScenario // 0-based position of this request in the client's window
  const res = get('/users/:id', { id: user.userId }, { token: user.token })
  if (n < LIMIT) {
    check(res, { 'within the limit gets 200': (r) => r.status === 200 })
  } else {
    check(res, {
      'over the limit gets 429': (r) => r.status === 429,
      '429 carries Retry-After': (r) => Number(r.headers['Retry-After']) > 0
    })
  }
}

export function teardown ({ servedBefore }) {
  expectExact('only the requests within the limit reach the user stub', served(USER_ADMIN_URL) - servedBefore, clients * LIMIT)
}

export const handleSummary = summaryFor(TC)
