// The IRL seed's basic load test: 50 VUs for 30 s (full; ci 10 s), each posting the seed's form body with tokens 1.
// The seed measured 381 req/s, p50 1.83 ms, p95 11.73 ms, 24.13 % limited, 0 errors; `npm run load -- seed-basic` prints ours beside.
import { sleep } from 'k6'
import { profileFor } from '../lib/profiles.js'
import { probeHealth } from '../lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from '../lib/summary.js'
import { SEED_THRESHOLDS, requireOpenMode, seedRequest } from './lib.js'

const TC = 'seed-basic'
const { vus, duration } = profileFor(TC)

export const options = {
  scenarios: { basic: { executor: 'constant-vus', exec: 'basic', vus, duration } },
  thresholds: { ...SEED_THRESHOLDS, 'http_req_duration{scenario:basic}': ['p(95)<500'] },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  requireOpenMode()
}

export function basic () {
  seedRequest(1)
  sleep(0.1)
}

export const handleSummary = summaryFor(TC)
