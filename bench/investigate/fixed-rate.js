// k6 script for `npm run bench`: GET /users/<id> at a fixed arrival rate (constant-arrival-rate, an open model), so
// p50/p99 include the time a request waits when the target falls behind instead of hiding it (coordinated omission).
// Each iteration picks a client at random from the tokens file; bench/run.mjs reads the JSON that handleSummary writes.
import http from 'k6/http'
import { SharedArray } from 'k6/data'

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:3000'
const RATE = Number(__ENV.RATE || 3000)
const DURATION = __ENV.DURATION || '15s'
const TOKENS_FILE = __ENV.TOKENS_FILE
const SUMMARY_PATH = __ENV.SUMMARY_PATH || 'results/bench-k6.json'

const clients = new SharedArray('clients', () => open(TOKENS_FILE).split('\n').filter(Boolean).map((line) => line.split(' ')))

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    fixed_rate: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(20, Math.ceil(RATE / 100)),
      maxVUs: Math.max(200, Math.ceil(RATE / 10)),
      gracefulStop: '5s'
    }
  }
}

export function setup () {
  const res = http.get(`${BASE_URL}/users/${clients[0][0]}`, { headers: { authorization: `Bearer ${clients[0][1]}` } })
  if (res.status !== 200) throw new Error(`setup: GET /users/${clients[0][0]} answered ${res.status}, expected 200`)
}

export default function () {
  const [id, token] = clients[Math.floor(Math.random() * clients.length)]
  http.get(`${BASE_URL}/users/${id}`, { headers: { authorization: `Bearer ${token}` }, tags: { name: 'GET /users/:id' } })
}

export function handleSummary (data) {
  const m = data.metrics
  const duration = m.http_req_duration.values
  const out = {
    requests: m.http_reqs ? m.http_reqs.values.count : 0,
    failedRate: m.http_req_failed ? m.http_req_failed.values.rate : 0,
    droppedIterations: m.dropped_iterations ? m.dropped_iterations.values.count : 0,
    p50Ms: duration['p(50)'],
    p90Ms: duration['p(90)'],
    p99Ms: duration['p(99)'],
    maxMs: duration.max
  }
  return { [SUMMARY_PATH]: JSON.stringify(out) }
}
