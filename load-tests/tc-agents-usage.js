// TC-AGENTS-USAGE (issue 13, usage-based debit): keyed agents call POST /api/v1/chat/completions with random
// max_tokens and prompts, a third of them streaming. Every answer is the completion (200) or the agent's own
// bucket's 429 with Retry-After; a 200 carries x-agent-tokens-reserved = its max_tokens, a JSON one
// x-agent-tokens-used = its usage.total_tokens, a stream ends with its usage chunk and [DONE]. Reconciliation:
// tc_usage_tokens (the usage.total_tokens k6 saw) must equal tc_gateway_debited_tokens (the change of
// gateway_agent_tokens_debited_total over the run, read in teardown); `npm run load` compares the two.
import http from 'k6/http'
import { check } from 'k6'
import { Counter, Rate } from 'k6/metrics'
import { BASE_URL, envNumber } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { clientIp } from './lib/http.js'
import { newRunId } from './lib/auth.js'
import { metricValue, probeHealth, scrape, waitUntil } from './lib/stack.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-agents-usage'
const { agents, vus, duration } = profileFor(TC)
const ADMIN_TOKEN = __ENV.ADMIN_TOKEN
const MAX_TOKENS = envNumber('AGENT_QUOTA_MAX_TOKENS_PER_REQUEST', 50)
const WORDS = ['tokens', 'bucket', 'agent', 'model', 'usage', 'debit', 'refund', 'stream', 'gateway', 'quota']

const usageTokens = new Counter('tc_usage_tokens')
const gatewayDebited = new Counter('tc_gateway_debited_tokens')
const completions = new Counter('tc_completions')
const rateLimited = new Rate('tc_rate_limited')
const non429Errors = new Rate('tc_non_429_errors')

http.setResponseCallback(http.expectedStatuses(200, 429))

export const options = {
  setupTimeout: '60s',
  scenarios: {
    agents: { executor: 'constant-vus', exec: 'agent', vus, duration }
  },
  thresholds: {
    checks: ['rate==1'],
    tc_non_429_errors: ['rate==0'],
    tc_completions: ['count>0'],
    tc_usage_tokens: ['count>0'],
    'http_req_duration{scenario:agents}': [`p(95)<${envNumber('AGENTS_USAGE_P95_MS', 500)}`]
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

const debitedNow = () => metricValue(scrape(), 'gateway_agent_tokens_debited_total')

export function setup () {
  probeHealth()
  if (!ADMIN_TOKEN) throw new Error('tc-agents-usage issues keys through the admin API: pass -e ADMIN_TOKEN=<the gateway\'s ADMIN_TOKEN>')
  const runId = newRunId()
  const batch = []
  for (let n = 0; n < agents; n++) {
    batch.push(['POST', `${BASE_URL}/admin/agents/usage-${runId}.${n}/keys`, '{}', {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'x-forwarded-for': clientIp(runId, 1) },
      tags: { name: 'setup' },
      responseCallback: http.expectedStatuses(201)
    }])
  }
  const keys = http.batch(batch).map((res) => {
    if (res.status !== 201) throw new Error(`POST /admin/agents/:agentId/keys answered ${res.status}: ${String(res.body).slice(0, 200)}`)
    return res.json().key
  })
  return { keys, debitedBefore: debitedNow() }
}

const pick = (n) => Math.floor(Math.random() * n)
let foreignRefusalsLogged = 0 // per VU: enough to name the limiter, bounded however many there are

/** The usage of a 200: the JSON body's, or the SSE stream's last chunk that carries one. */
function usageOf (res, stream) {
  if (!stream) return res.json().usage
  const events = String(res.body).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6))
  if (events.at(-1) !== '[DONE]') return undefined
  const last = events.at(-2)
  return last === undefined ? undefined : JSON.parse(last).usage
}

export function agent ({ keys }) {
  const maxTokens = 1 + pick(MAX_TOKENS)
  const stream = pick(3) === 0
  const content = Array.from({ length: 1 + pick(30) }, () => WORDS[pick(WORDS.length)]).join(' ')
  const res = http.post(`${BASE_URL}/api/v1/chat/completions`, JSON.stringify({ model: 'fake', messages: [{ role: 'user', content }], max_tokens: maxTokens, ...(stream ? { stream: true } : {}) }), {
    headers: { 'x-api-key': keys[pick(keys.length)], 'content-type': 'application/json' },
    tags: { name: 'POST /api/v1/chat/completions', stream: String(stream) }
  })
  rateLimited.add(res.status === 429)
  non429Errors.add(res.status !== 200 && res.status !== 429)
  if (res.status !== 200 && res.status !== 429) console.warn(`unexpected answer ${res.status} ${res.error || ''}: ${String(res.body ?? '').slice(0, 200)}`)
  if (res.status === 429) {
    const own = check(res, { 'a refused call is the agent\'s own bucket, with Retry-After': (r) => r.json().code === 'GW_QUOTA_EXCEEDED' && Number(r.headers['Retry-After']) > 0 })
    if (!own && ++foreignRefusalsLogged <= 3) console.warn(`429 not from the agent's token bucket (Retry-After ${res.headers['Retry-After']}): ${String(res.body).slice(0, 200)}`)
    return
  }
  let usage
  try { usage = usageOf(res, stream) } catch {}
  const ok = check(res, {
    'a keyed agent gets its completion': (r) => r.status === 200,
    'the answer says the tokens reserved (its max_tokens)': (r) => Number(r.headers['X-Agent-Tokens-Reserved']) === maxTokens,
    'the answer carries its usage': () => usage !== undefined && Number.isInteger(usage.total_tokens),
    'a JSON answer says the tokens used': (r) => stream || Number(r.headers['X-Agent-Tokens-Used']) === usage?.total_tokens
  })
  if (ok && usage) {
    completions.add(1)
    usageTokens.add(usage.total_tokens)
  }
}

export function teardown ({ debitedBefore }) {
  // Settlement happens as each answer ends; a stream's may land a moment after k6 has read its last byte.
  let last = debitedBefore
  waitUntil(() => { const now = debitedNow(); const stable = now === last; last = now; return stable }, 3000)
  gatewayDebited.add(last - debitedBefore)
}

export const handleSummary = summaryFor(TC)
