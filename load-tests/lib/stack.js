// What TCs need from the stack around the API: the health probe for setup(), the stubs' fault admin and the
// gateway's /metrics. These calls are tagged `name: admin` so they stay out of the per-route series.
import http from 'k6/http'
import { sleep } from 'k6'
import { BASE_URL } from './config.js'

const ADMIN = { tags: { name: 'admin', service: 'admin' }, responseCallback: http.expectedStatuses(200) }

/** For setup(): the gateway answers GET /health with 200 {status:"ok"}, or this throws with what it got. */
export function probeHealth () {
  const res = http.get(`${BASE_URL}/health`, ADMIN)
  if (res.status !== 200 || !String(res.body).includes('"ok"')) {
    throw new Error(`gateway at ${BASE_URL} is not healthy: GET /health answered ${res.status} ${res.error || ''} ${String(res.body ?? '').slice(0, 300)}`)
  }
}

/** GET /health/ready → the parsed body (breaker state per upstream, Redis). */
export function readiness () {
  const res = http.get(`${BASE_URL}/health/ready`, { ...ADMIN, responseCallback: http.expectedStatuses(200, 503) })
  try { return res.json() } catch { throw new Error(`GET /health/ready answered ${res.status}: ${String(res.body).slice(0, 300)}`) }
}

/** Sets a stub's fault mode (ok|fail|slow|hang) through its own admin endpoint; throws when it is not enabled. */
export function setFault (adminUrl, mode, delayMs) {
  const res = http.post(`${adminUrl}/__fault`, JSON.stringify(delayMs === undefined ? { mode } : { mode, delayMs }), {
    ...ADMIN, headers: { 'content-type': 'application/json' }
  })
  if (res.status !== 200) throw new Error(`POST ${adminUrl}/__fault answered ${res.status} ${res.error || ''} (start the stubs with STUB_FAULTS=1): ${String(res.body ?? '').slice(0, 200)}`)
}

/** How many requests the stub has served since it started (GET /__fault → served). */
export function served (adminUrl) {
  const res = http.get(`${adminUrl}/__fault`, ADMIN)
  if (res.status !== 200) throw new Error(`GET ${adminUrl}/__fault answered ${res.status} ${res.error || ''} (start the stubs with STUB_FAULTS=1)`)
  return res.json().served
}

/** The gateway's /metrics as a list of { name, labels, value } (it answers loopback clients). */
export function scrape () {
  const res = http.get(`${BASE_URL}/metrics`, ADMIN)
  if (res.status !== 200) throw new Error(`GET ${BASE_URL}/metrics answered ${res.status}: ${String(res.body ?? '').slice(0, 200)}`)
  const samples = []
  for (const line of String(res.body).split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!match) continue
    const labels = {}
    for (const [, key, value] of (match[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value
    samples.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return samples
}

/** Sum of the samples of `name` whose labels include `labels` (0 when there is none yet). */
export function metricValue (samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === String(v)))
    .reduce((sum, s) => sum + s.value, 0)
}

/** Polls `condition` every 100 ms until it is truthy or `timeoutMs` passes; returns its last value. */
export function waitUntil (condition, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  let value = condition()
  while (!value && Date.now() < deadline) {
    sleep(0.1)
    value = condition()
  }
  return value
}

/** For setup() of the rate-limit TCs: the gateway's X-RateLimit-Limit must be the limit the TC expects. */
export function assertRateLimit (expected, ip) {
  const res = http.get(`${BASE_URL}/api/quota/probe`, { ...ADMIN, headers: { 'x-forwarded-for': ip } })
  const limit = Number(res.headers['X-Ratelimit-Limit'])
  if (limit !== expected) {
    throw new Error(`the gateway enforces ${res.headers['X-Ratelimit-Limit']} requests per window (GET /api/quota/probe answered ${res.status}) but this run expects RATE_LIMIT_MAX=${expected}; pass -e RATE_LIMIT_MAX=<the gateway's value>`)
  }
}
