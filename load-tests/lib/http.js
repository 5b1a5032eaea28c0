// The one way TCs call the gateway: JSON in and out, the caller's identity (token and/or client address), a `name`
// tag that is the route template (user and agent ids in URLs would explode the series count in Prometheus), and
// the shared per-response metrics.
import http from 'k6/http'
import { BASE_URL } from './config.js'
import { rateLimited, unexpectedErrors } from './metrics.js'
import { non429Errors } from './report-metrics.js'

const SERVICE = { auth: 'auth', users: 'user', orders: 'order', api: 'api', health: 'health', metrics: 'metrics' }

/**
 * `route` is a template such as '/users/:id'; `params` fills it. Options: body (sent as JSON), token, ip (sent as
 * X-Forwarded-For), tags (added to the request and to the shared metrics), expected (statuses ≥ 400 that are the
 * point of this call, so they do not count as unexpected errors), timeout.
 */
export function call (method, route, params = {}, opts = {}) {
  const res = http.request(...request(method, route, params, opts))
  record(res, opts.expected, opts.tags)
  return res
}

/** Several calls at once (http.batch), each [method, route, params, opts] as for call(); set `batchPerHost` ≥ their number. */
export function callAll (calls) {
  const responses = http.batch(calls.map(([method, route, params, opts]) => request(method, route, params, opts)))
  responses.forEach((res, i) => record(res, calls[i][3]?.expected, calls[i][3]?.tags))
  return responses
}

function request (method, route, params = {}, { body, token, ip, tags = {}, timeout } = {}) {
  const path = route.replace(/:([A-Za-z]+)/g, (_, key) => {
    if (params[key] === undefined) throw new Error(`${route}: no value for :${key}`)
    return encodeURIComponent(params[key])
  })
  const headers = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  if (ip) headers['x-forwarded-for'] = ip
  const allTags = { name: `${method} ${route}`, service: SERVICE[route.split('/')[1]] || 'other', ...tags }
  return [method, `${BASE_URL}${path}`, body === undefined ? null : JSON.stringify(body), { headers, tags: allTags, ...(timeout ? { timeout } : {}) }]
}

export const get = (route, params, opts) => call('GET', route, params, opts)
export const post = (route, params, opts) => call('POST', route, params, opts)

/** Shared per-response metrics: 429 share, errors other than 429/503 (and the call's expected ones), non-429 errors. */
export function record (res, expected = [], tags = {}) {
  const failed = res.status === 0 || res.status >= 400
  rateLimited.add(res.status === 429, tags)
  unexpectedErrors.add(failed && res.status !== 429 && res.status !== 503 && !expected.includes(res.status), tags)
  non429Errors.add(failed && res.status !== 429, tags)
}

/** The parsed JSON body, or undefined (never throws: a check on it then fails with a readable name). */
export function json (res) {
  try { return res.json() } catch { return undefined }
}

/** The `code` of an error reply ({statusCode, error, message, code}). */
export const errorCode = (res) => json(res)?.code

/**
 * A distinct client address for (run, n), sent as X-Forwarded-For. With TRUST_PROXY=true the gateway takes the
 * client IP from it, so one k6 machine acts as many clients. IPv6 ULA (fd00::/8) leaves room for every run and
 * client, so runs never share a rate-limit window.
 */
export function clientIp (runId, n) {
  let hash = 2166136261
  for (const char of String(runId)) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0
  const hex = (v) => (v & 0xffff).toString(16)
  return `fd00:${hex(hash >>> 16)}:${hex(hash)}::${hex(Math.floor(n / 65536))}:${hex(n)}`
}
