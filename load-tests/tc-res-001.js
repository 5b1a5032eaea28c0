// TC-RES-001 graceful degradation. The arrival rate starts low, then ramps far past the capacity the gateway is
// configured to grant (the agents' buckets refill AGENT_QUOTA_REFILL_PER_SECOND; a handful of users share the
// deposits, so their locks contend) and stays there. The gateway does not fall over: refusals (429, lock 503) are
// rare at the low rate, rise with the load, and at the top it still grants what the buckets refill rather than
// refusing everything; no other error appears, latency stays bounded and /health answers afterwards.
import http from 'k6/http'
import { check } from 'k6'
import { envNumber } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp, get, post } from './lib/http.js'
import { phaseOf, randomInt, spendTokens } from './lib/traffic.js'
import { loadSetup } from './lib/setup.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-res-001'
const { agents, users: userCount, lowRate, highRate, low, ramp, high, maxVUs } = profileFor(TC)
const PHASES = [['low', low], ['ramp', low + ramp], ['high', Infinity]]

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429, 503))

export const options = {
  scenarios: {
    overload: {
      executor: 'ramping-arrival-rate',
      exec: 'overload',
      startRate: lowRate,
      timeUnit: '1s',
      stages: [{ target: lowRate, duration: `${low}s` }, { target: highRate, duration: `${ramp}s` }, { target: highRate, duration: `${high}s` }],
      preAllocatedVUs: Math.ceil(maxVUs / 3),
      maxVUs
    }
  },
  thresholds: {
    checks: ['rate==1'],
    // Errors other than 429/503 stay ~0 all along.
    tc_unexpected_errors: ['rate<0.001'],
    // Refusals rise gradually: rare at the low rate, common at the top, never all.
    'tc_rate_limited{phase:low}': ['rate<0.01'],
    'tc_rate_limited{phase:high}': ['rate>0.3', 'rate<0.99'],
    // Latency bounded: refusing is cheap, so the top of the ramp is not much slower than the bottom.
    'http_req_duration{phase:low}': [`p(95)<${envNumber('RES_P95_MS', 500)}`],
    'http_req_duration{phase:high}': [`p(95)<${envNumber('RES_P95_MS', 500)}`, `p(99)<${envNumber('RES_P99_MS', 1500)}`]
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  return loadSetup('res', userCount)
}

export function overload ({ runId, users }) {
  const tags = { phase: phaseOf(PHASES) }
  if (Math.random() < 0.8) {
    const n = randomInt(1, agents)
    spendTokens(`res-${runId}-${n}`, 5, { ip: clientIp(runId, n), tags })
  } else {
    const user = users[randomInt(0, users.length - 1)]
    const res = post('/users/:id/deposit', { id: user.userId }, { token: user.token, tags, body: { amount: 1 } })
    check(res, { 'a deposit gets 200, or 503 while the same user has one in flight': (r) => r.status === 200 || r.status === 503 })
  }
}

export function teardown () {
  check(get('/health'), { 'the gateway still answers /health after the overload': (r) => r.status === 200 })
}

export const handleSummary = summaryFor(TC)
