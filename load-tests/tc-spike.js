// TC-SPIKE (IRL seed): a baseline of `baseVus` clients, a sudden jump to `peakVus` (×10), and back. During the
// spike only 429s and lock 503s may be refusals; once the load is back at baseline (the recovery phase) nothing
// fails and p95 is back under SPIKE_RECOVERY_P95_MS: the gateway recovers by itself.
import http from 'k6/http'
import { sleep } from 'k6'
import exec from 'k6/execution'
import { envNumber } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp } from './lib/http.js'
import { mixedRequest, phaseOf, randomInt } from './lib/traffic.js'
import { loadSetup } from './lib/setup.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-spike'
const { baseVus, peakVus, baseline, up, peak, down, recovery } = profileFor(TC)
const PHASES = [['baseline', baseline], ['spike', baseline + up + peak + down], ['recovery', Infinity]]

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429, 503))

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-vus',
      exec: 'spike',
      startVUs: baseVus,
      stages: [
        { target: baseVus, duration: `${baseline}s` },
        { target: peakVus, duration: `${up}s` },
        { target: peakVus, duration: `${peak}s` },
        { target: baseVus, duration: `${down}s` },
        { target: baseVus, duration: `${recovery}s` }
      ],
      gracefulRampDown: '5s'
    }
  },
  thresholds: {
    checks: ['rate>0.99'],
    tc_unexpected_errors: ['rate<0.01'],
    'tc_unexpected_errors{phase:recovery}': ['rate==0'],
    'http_req_duration{phase:baseline}': [`p(95)<${envNumber('SPIKE_BASELINE_P95_MS', 500)}`],
    'http_req_duration{phase:spike}': [`p(99)<${envNumber('SPIKE_P99_MS', 3000)}`],
    'http_req_duration{phase:recovery}': [`p(95)<${envNumber('SPIKE_RECOVERY_P95_MS', 500)}`]
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  return loadSetup('spike', baseVus)
}

export function spike ({ runId, users }) {
  const n = exec.vu.idInTest - 1
  const phase = phaseOf(PHASES)
  mixedRequest({ agentId: `spike-${runId}-${randomInt(1, 10000)}`, user: users[n % users.length], ip: clientIp(runId, n + 1), tags: { phase } })
  sleep(0.2 + Math.random() * 0.3)
}

export const handleSummary = summaryFor(TC)
