// TC-SOAK (IRL seed): a steady arrival rate of mixed traffic for SOAK_DURATION (ci 20s, full 30m unless set).
// Nothing but 429s and lock 503s fails, latency in the last third is as bounded as in the first, and the gateway's
// resident memory grows by less than SOAK_MAX_RSS_GROWTH_MB (a leak shows up here first).
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { PROFILE, envNumber } from './lib/config.js'
import { profileFor, seconds } from './lib/profiles.js'
import { clientIp } from './lib/http.js'
import { metricValue, scrape } from './lib/stack.js'
import { mixedRequest, phaseOf, randomInt } from './lib/traffic.js'
import { loadSetup } from './lib/setup.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-soak'
const { rate, maxVUs } = profileFor(TC)
const DURATION = __ENV.SOAK_DURATION || profileFor(TC).duration
const THIRD_S = seconds(DURATION) / 3
const P95_MS = envNumber('SOAK_P95_MS', 500)
const P99_MS = envNumber('SOAK_P99_MS', 1500)
const MAX_RSS_GROWTH_MB = envNumber('SOAK_MAX_RSS_GROWTH_MB', PROFILE === 'ci' ? 100 : 200)

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429, 503))

export const options = {
  scenarios: {
    soak: { executor: 'constant-arrival-rate', exec: 'soak', rate, timeUnit: '1s', duration: DURATION, preAllocatedVUs: rate, maxVUs }
  },
  thresholds: {
    checks: ['rate>0.999'],
    tc_unexpected_errors: ['rate<0.001'],
    'http_req_duration{phase:first}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    'http_req_duration{phase:last}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    // The arrival rate was kept: at most 1 % of the planned iterations were dropped for lack of VUs.
    dropped_iterations: [`count<${Math.ceil(rate * seconds(DURATION) * 0.01) + 1}`]
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

const rssMb = () => metricValue(scrape(), 'process_resident_memory_bytes') / 2 ** 20

export function setup () {
  return { ...loadSetup('soak', 20), rssBefore: rssMb() }
}

export function soak ({ runId, users }) {
  const n = exec.scenario.iterationInTest
  // Each user is the only one writing for itself at a time only on average; a lock 503 is an accepted answer.
  mixedRequest({ agentId: `soak-${runId}-${randomInt(1, 10000)}`, user: users[n % users.length], ip: clientIp(runId, (n % 500) + 1), tags: { phase: phaseOf([['first', THIRD_S], ['middle', 2 * THIRD_S], ['last', Infinity]]) } })
}

export function teardown ({ rssBefore }) {
  const growth = rssMb() - rssBefore
  check(growth, { [`the gateway's resident memory grows by less than ${MAX_RSS_GROWTH_MB} MB`]: (g) => g < MAX_RSS_GROWTH_MB })
  console.log(`gateway RSS: ${rssBefore.toFixed(0)} MB before, ${(rssBefore + growth).toFixed(0)} MB after`)
}

export const handleSummary = summaryFor(TC)
