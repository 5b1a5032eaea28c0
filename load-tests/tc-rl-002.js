// TC-RL-002 rate-limit headers. Each client (an anonymous one, keyed by its X-Forwarded-For address) sends
// RATE_LIMIT_MAX + extra requests one after the other. Every response, 429s included, carries X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset; Remaining goes down by exactly one per request and stays at 0 past
// the limit; Reset is a whole number of seconds within the window that never goes up; 429s carry Retry-After.
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { GATEWAY } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp, get } from './lib/http.js'
import { newRunId } from './lib/auth.js'
import { assertRateLimit, probeHealth } from './lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-rl-002'
const { clients, extraRequests } = profileFor(TC)
const LIMIT = GATEWAY.rateLimitMax
const WINDOW_S = Math.ceil(GATEWAY.rateLimitWindowMs / 1000)

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429))

export const options = {
  scenarios: {
    headers: { executor: 'per-vu-iterations', exec: 'headers', vus: clients, iterations: LIMIT + extraRequests, maxDuration: '50s' }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    // A sanity bound (the TC is about headers): a route that answers from the limiter and the bucket store.
    'http_req_duration{name:GET /api/quota/:agentId}': ['p(95)<300', 'p(99)<1000']
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const runId = newRunId()
  assertRateLimit(LIMIT, clientIp(runId, 999999))
  return { runId }
}

let previous // this VU's previous { remaining, reset }

export function headers ({ runId }) {
  const n = exec.vu.iterationInScenario
  const res = get('/api/quota/:agentId', { agentId: `rl2-${runId}` }, { ip: clientIp(runId, exec.vu.idInTest) })
  const limit = Number(res.headers['X-Ratelimit-Limit'])
  const remaining = Number(res.headers['X-Ratelimit-Remaining'])
  const reset = Number(res.headers['X-Ratelimit-Reset'])
  check(res, {
    'X-RateLimit-Limit is the configured limit': () => limit === LIMIT,
    'X-RateLimit-Remaining goes down by one per request, then stays 0': () => remaining === Math.max(0, LIMIT - n - 1),
    'X-RateLimit-Reset is whole seconds within the window': () => Number.isInteger(reset) && reset >= 0 && reset <= WINDOW_S,
    'X-RateLimit-Reset never goes up within the window': () => previous === undefined || reset <= previous.reset
  })
  if (n < LIMIT) {
    check(res, { 'within the limit gets 200': (r) => r.status === 200 })
  } else {
    check(res, {
      'over the limit gets 429': (r) => r.status === 429,
      '429 carries Retry-After within the window': (r) => Number(r.headers['Retry-After']) > 0 && Number(r.headers['Retry-After']) <= WINDOW_S
    })
  }
  previous = { remaining, reset }
}

export const handleSummary = summaryFor(TC)
