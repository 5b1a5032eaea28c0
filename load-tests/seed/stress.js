// The IRL seed's stress test: a light population (1 000 VUs, 1–2 tokens) and a heavy one (100 VUs, 5–20 tokens) over
// 6 minutes (full; ci scales VUs and time down through lib/profiles.js), the seed's form body, only 200 or 429.
import { sleep } from 'k6'
import { profileFor } from '../lib/profiles.js'
import { probeHealth } from '../lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from '../lib/summary.js'
import { SEED_THRESHOLDS, requireOpenMode, seedRequest } from './lib.js'

const TC = 'seed-stress'
const { lightVus, heavyVus, up, hold, down } = profileFor(TC)
const stages = (target) => [{ duration: up, target }, { duration: hold, target }, { duration: down, target: 0 }]
const between = (low, high) => low + Math.floor(Math.random() * (high - low + 1))

export const options = {
  scenarios: {
    light: { executor: 'ramping-vus', exec: 'light', startVUs: 0, stages: stages(lightVus) },
    heavy: { executor: 'ramping-vus', exec: 'heavy', startVUs: 0, stages: stages(heavyVus) }
  },
  thresholds: { ...SEED_THRESHOLDS, http_req_duration: ['p(95)<2000'] },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  requireOpenMode()
}

export function light () {
  seedRequest(between(1, 2))
  sleep(0.1)
}

export function heavy () {
  seedRequest(between(5, 20))
  sleep(0.1)
}

export const handleSummary = summaryFor(TC)
