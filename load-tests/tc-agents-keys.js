// TC-AGENTS-KEYS (issue 13): 10 000 agents, each with its own API key, all from one client address. setup() issues
// the keys through the admin API (ADMIN_TOKEN); then every agent sends `requestsPerAgent` requests of 1 token, half
// JSON and half form-encoded. Each agent is limited by its own bucket (AGENT_QUOTA_CAPACITY, the runner sets 1 and a
// negligible refill): exactly agents × capacity requests are granted, every other one is a GW_QUOTA_EXCEEDED 429 —
// never the per-address limit (RATE_LIMIT_MAX, the runner sets 100), never 401/415/400.
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { Counter, Rate } from 'k6/metrics'
import { BASE_URL, GATEWAY, envNumber } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp } from './lib/http.js'
import { newRunId } from './lib/auth.js'
import { probeHealth } from './lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-agents-keys'
const { agents, requestsPerAgent, vus, maxDuration } = profileFor(TC)
const ADMIN_TOKEN = __ENV.ADMIN_TOKEN
const capacity = GATEWAY.agentQuotaCapacity
const ISSUE_BATCH = 100

const granted = new Counter('tc_granted')
const rateLimited = new Rate('tc_rate_limited')
const non429Errors = new Rate('tc_non_429_errors')
const authOrInputErrors = new Rate('tc_auth_or_input_errors')
const addressLimited = new Counter('tc_address_limited')
/** Answers other than 200/429, by status (e.g. a fail-closed 503 when Redis answers later than REDIS_COMMAND_TIMEOUT_MS). */
const otherStatus = new Counter('tc_other_status')

http.setResponseCallback(http.expectedStatuses(200, 429))

export const options = {
  setupTimeout: '180s',
  scenarios: {
    agents: { executor: 'shared-iterations', exec: 'agent', vus, iterations: agents * requestsPerAgent, maxDuration }
  },
  thresholds: {
    checks: ['rate==1'],
    'tc_other_status{status:503}': ['count<20'],
    tc_auth_or_input_errors: ['rate==0'],
    // The brief's bar is no 401/415/400 (above); any other non-429 answer (a fail-closed 503 on a stalled Redis) stays rare.
    tc_non_429_errors: ['rate<0.001'],
    tc_address_limited: ['count==0'],
    // Each agent's own bucket: exactly `capacity` grants per agent, no more, no fewer.
    tc_granted: [`count==${agents * Math.min(capacity, requestsPerAgent)}`],
    'http_req_duration{scenario:agents}': [`p(95)<${envNumber('AGENTS_P95_MS', 500)}`]
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  if (!ADMIN_TOKEN) throw new Error('tc-agents-keys issues keys through the admin API: pass -e ADMIN_TOKEN=<the gateway\'s ADMIN_TOKEN>')
  const runId = newRunId()
  const keys = []
  for (let start = 0; start < agents; start += ISSUE_BATCH) {
    // Each batch from its own X-Forwarded-For address (TRUST_PROXY=true): issuing 10 000 keys is not what the
    // one-address limit is about; the scenario below sends everything from this machine's one address.
    const batch = []
    for (let n = start; n < Math.min(agents, start + ISSUE_BATCH); n++) {
      batch.push(['POST', `${BASE_URL}/admin/agents/agent-${runId}.${n}/keys`, '{}', {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'x-forwarded-for': clientIp(runId, 1 + start / ISSUE_BATCH) },
        tags: { name: 'setup' },
        responseCallback: http.expectedStatuses(201)
      }])
    }
    for (const res of http.batch(batch)) {
      if (res.status !== 201) throw new Error(`POST /admin/agents/:agentId/keys answered ${res.status}: ${String(res.body).slice(0, 200)}`)
      keys.push(res.json().key)
    }
  }
  return { keys }
}

export function agent ({ keys }) {
  const i = exec.scenario.iterationInTest
  const key = keys[i % agents]
  const form = i % 2 === 1
  const res = form
    ? http.post(`${BASE_URL}/api/request`, { tokens: 1 }, { headers: { 'x-api-key': key }, tags: { name: 'POST /api/request' } })
    : http.post(`${BASE_URL}/api/request`, JSON.stringify({ tokens: 1 }), { headers: { 'x-api-key': key, 'content-type': 'application/json' }, tags: { name: 'POST /api/request' } })
  let code
  try { code = res.json().code } catch {}
  granted.add(res.status === 200 ? 1 : 0)
  rateLimited.add(res.status === 429)
  non429Errors.add(res.status !== 200 && res.status !== 429)
  if (res.status !== 200 && res.status !== 429) otherStatus.add(1, { status: String(res.status), code: code ?? '' })
  authOrInputErrors.add(res.status === 400 || res.status === 401 || res.status === 415)
  addressLimited.add(code === 'GW_RATE_LIMITED' ? 1 : 0)
  check(res, {
    'a keyed agent never gets 400, 401 or 415': (r) => r.status !== 400 && r.status !== 401 && r.status !== 415,
    'a 429 is the agent\'s own bucket, never the address limit': (r) => r.status !== 429 || code === 'GW_QUOTA_EXCEEDED'
  })
}

export const handleSummary = summaryFor(TC)
