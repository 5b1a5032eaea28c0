// TC-STRESS (IRL seed): two populations of agents under a rising arrival rate, as two scenarios.
// - light: many agents asking 1–2 tokens, far within what their buckets refill → (almost) never refused;
// - heavy: few agents asking 5–20 tokens, far past their refill → refused often, yet still granted what refills.
// Besides 429s nothing fails, and latency stays bounded while the gateway refuses.
import http from 'k6/http'
import { profileFor } from './lib/profiles.js'
import { envNumber } from './lib/config.js'
import { clientIp } from './lib/http.js'
import { randomInt, spendTokens } from './lib/traffic.js'
import { loadSetup } from './lib/setup.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-stress'
const { lightAgents, heavyAgents, lightPeak, heavyPeak, ramp, hold, maxVUs } = profileFor(TC)
const P95_MS = envNumber('STRESS_P95_MS', 500)
const P99_MS = envNumber('STRESS_P99_MS', 1500)

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429))

const rising = (peak) => ({
  executor: 'ramping-arrival-rate',
  startRate: Math.ceil(peak / 10),
  timeUnit: '1s',
  stages: [{ target: peak, duration: `${ramp}s` }, { target: peak, duration: `${hold}s` }],
  preAllocatedVUs: Math.ceil(maxVUs / 4),
  maxVUs
})

export const options = {
  scenarios: {
    light: { ...rising(lightPeak), exec: 'light' },
    heavy: { ...rising(heavyPeak), exec: 'heavy' }
  },
  thresholds: {
    checks: ['rate==1'],
    tc_unexpected_errors: ['rate<0.01'],
    'tc_rate_limited{scenario:light}': ['rate<0.01'],
    'tc_rate_limited{scenario:heavy}': ['rate>0.2', 'rate<0.99'],
    // Bounded, not an SLO: the defaults hold on 2 shared cores where k6 itself takes one (tc-latency-001 has the SLOs).
    'http_req_duration{scenario:light}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    'http_req_duration{scenario:heavy}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    'tc_quota_tokens_spent{scenario:heavy}': ['count>0']
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  return loadSetup('stress')
}

// Each agent calls from its own client address, as separate programs would.
export function light ({ runId }) {
  const n = randomInt(1, lightAgents)
  spendTokens(`light-${runId}-${n}`, randomInt(1, 2), { ip: clientIp(runId, n) })
}

export function heavy ({ runId }) {
  const n = randomInt(1, heavyAgents)
  spendTokens(`heavy-${runId}-${n}`, randomInt(5, 20), { ip: clientIp(runId, 1_000_000 + n) })
}

export const handleSummary = summaryFor(TC)
