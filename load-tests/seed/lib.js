// What the IRL seed's three scripts share: the request exactly as the seed sends it — a plain object, which k6 posts
// form-encoded, with `agentId: agent-${Math.random() * 10000}` — and checks that accept only 200 or 429. The gateway
// must run with AGENT_AUTH=open (its lab mode); `npm run load -- seed-basic` starts it so.
import http from 'k6/http'
import { check } from 'k6'
import { Rate } from 'k6/metrics'
import { BASE_URL } from '../lib/config.js'

/** Share of 429 answers (the table's "429 %") and of everything that is neither 200 nor 429. */
export const rateLimited = new Rate('tc_rate_limited')
export const non429Errors = new Rate('tc_non_429_errors')

http.setResponseCallback(http.expectedStatuses(200, 429))

export const SEED_THRESHOLDS = {
  checks: ['rate==1'],
  tc_non_429_errors: ['rate==0']
}

/** One request of the seed: POST /api/request { agentId, tokens } form-encoded; 200 or 429 are the only right answers. */
export function seedRequest (tokens) {
  const res = http.post(`${BASE_URL}/api/request`, { agentId: `agent-${Math.random() * 10000}`, tokens }, { tags: { name: 'POST /api/request' } })
  rateLimited.add(res.status === 429)
  non429Errors.add(res.status !== 200 && res.status !== 429)
  check(res, { 'status is 200 or 429': (r) => r.status === 200 || r.status === 429 })
  return res
}

/** For setup(): the gateway must be in open mode, or every seed request would be a 401. */
export function requireOpenMode () {
  const res = http.post(`${BASE_URL}/api/request`, { agentId: 'agent-probe.0', tokens: 1 }, { tags: { name: 'setup' }, responseCallback: http.expectedStatuses(200, 401, 429) })
  if (res.status === 401) throw new Error(`the gateway at ${BASE_URL} wants agent keys (401): start it with AGENT_AUTH=open for the seed's scripts`)
  if (res.status !== 200 && res.status !== 429) throw new Error(`POST /api/request (form) answered ${res.status}: ${String(res.body).slice(0, 200)}`)
}
