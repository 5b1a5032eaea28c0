// The IRL seed's spike test: 50 VUs for 1 min, 500 for 1 min, 50 for 1 min (full; ci 20 s each), the seed's form
// body with tokens 1, only 200 or 429.
import { sleep } from 'k6'
import { profileFor } from '../lib/profiles.js'
import { probeHealth } from '../lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from '../lib/summary.js'
import { SEED_THRESHOLDS, requireOpenMode, seedRequest } from './lib.js'

const TC = 'seed-spike'
const { baseVus, peakVus, stage } = profileFor(TC)

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-vus',
      exec: 'spike',
      startVUs: baseVus,
      stages: [
        { duration: stage, target: baseVus },
        { duration: '1s', target: peakVus },
        { duration: stage, target: peakVus },
        { duration: '1s', target: baseVus },
        { duration: stage, target: baseVus }
      ]
    }
  },
  thresholds: { ...SEED_THRESHOLDS, http_req_duration: ['p(95)<2000'] },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  requireOpenMode()
}

export function spike () {
  seedRequest(1)
  sleep(0.1)
}

export const handleSummary = summaryFor(TC)
