// A small load generator for the chaos and soak runs and the process tests: undici pools, bounded concurrency,
// one record per request. Hand-written rather than k6 because the runs must kill and restart processes mid-load and
// then compare what each client saw (status, error code, instance, request id) with the ground truth.
import { Pool } from 'undici'

/**
 * What became of a request, as far as the client can know:
 * - response: an HTTP answer arrived (status and JSON body recorded);
 * - refused: the connection was refused, so the request never left the client (certainly not applied);
 * - reset / timeout: the request may or may not have been processed (the outcome is unknown).
 */
const REFUSED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT'])
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

export function classifyError (err) {
  const code = err?.code ?? err?.cause?.code ?? err?.name ?? 'ERROR'
  if (REFUSED.has(code)) return { outcome: 'refused', error: code }
  if (TIMEOUTS.has(code)) return { outcome: 'timeout', error: code }
  return { outcome: 'reset', error: code }
}

/**
 * A set of gateway instances behind a client-side round robin. An instance that refuses a connection is skipped
 * for `retryDownMs`, then tried again, as a load balancer's passive health check would.
 */
export function createFleet (urls, { connections = 16, timeoutMs = 5000, retryDownMs = 1000 } = {}) {
  const instances = urls.map((url, index) => ({
    index,
    url,
    pool: new Pool(url, { connections, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connectTimeout: timeoutMs, keepAliveTimeout: 4000 }),
    downUntil: 0,
    sent: 0
  }))
  let cursor = 0
  return {
    instances,
    /** The next live instance (all of them may be down: then the least recently failed one). */
    pick () {
      const now = Date.now()
      for (let i = 0; i < instances.length; i++) {
        const inst = instances[(cursor + i) % instances.length]
        if (inst.downUntil <= now) {
          cursor = (inst.index + 1) % instances.length
          return inst
        }
      }
      return instances.reduce((a, b) => (a.downUntil <= b.downUntil ? a : b))
    },
    markDown (inst) { inst.downUntil = Date.now() + retryDownMs },
    async close () { await Promise.all(instances.map((inst) => inst.pool.destroy().catch(() => {}))) }
  }
}

/**
 * Sends one request and returns its record; never throws. `spec`: { method, path, headers, json, id, kind }.
 * The x-request-id header carries `id`, so the audit log's reqId can be matched with what the client saw.
 */
export async function send (fleet, spec, inst = fleet.pick()) {
  const headers = { 'x-request-id': spec.id, ...spec.headers }
  let body
  if (spec.json !== undefined) {
    body = JSON.stringify(spec.json)
    headers['content-type'] = 'application/json'
  }
  const record = { id: spec.id, kind: spec.kind, inst: inst.index, method: spec.method, path: spec.path, sentAt: Date.now() }
  inst.sent++
  try {
    const res = await inst.pool.request({ method: spec.method, path: spec.path, headers, body })
    const text = await res.body.text()
    record.doneAt = Date.now()
    record.outcome = 'response'
    record.status = res.statusCode
    if (spec.keepHeaders) record.headers = res.headers
    try {
      record.body = JSON.parse(text)
      if (record.status >= 400) record.code = record.body?.code
    } catch { record.text = text.slice(0, 200) }
  } catch (err) {
    record.doneAt = Date.now()
    Object.assign(record, classifyError(err))
    if (record.outcome === 'refused') fleet.markDown(inst)
  }
  return record
}

/** Runs `concurrency` workers calling `task(worker)` until `stop()` returns true; resolves when all have returned. */
export async function runWorkers (concurrency, stop, task) {
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (!stop()) await task(worker)
  }))
}

/**
 * Paces its callers to `rate` starts per second: the k-th call resolves at start + k / rate. A caller more than a
 * second behind the schedule (a starved machine) restarts it, rather than bursting to catch up.
 */
export function createPacer (rate) {
  let start = Date.now()
  let issued = 0
  return async function pace () {
    let wait = start + (issued++ * 1000) / rate - Date.now()
    if (wait < -1000) { start = Date.now(); issued = 1; wait = 0 }
    if (wait > 0) await sleep(wait)
  }
}

/** Least-squares slope of y over x (same units as y per unit of x), and the fit's r². */
export function leastSquares (points) {
  const n = points.length
  if (n < 2) return { slope: 0, intercept: points[0]?.[1] ?? 0, r2: 0 }
  let sx = 0; let sy = 0; let sxx = 0; let sxy = 0; let syy = 0
  for (const [x, y] of points) { sx += x; sy += y; sxx += x * x; sxy += x * y; syy += y * y }
  const den = n * sxx - sx * sx
  const slope = den === 0 ? 0 : (n * sxy - sx * sy) / den
  const intercept = (sy - slope * sx) / n
  const ssTot = syy - sy * sy / n
  const ssRes = points.reduce((acc, [x, y]) => acc + (y - intercept - slope * x) ** 2, 0)
  return { slope, intercept, r2: ssTot === 0 ? 0 : 1 - ssRes / ssTot }
}

// Kept as an export of the load generator for its callers (soak, bench); the parser lives in prom-text.mjs.
export { promSample } from './prom-text.mjs'

export function percentile (values, p) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A fixed-width text table: rows of cells, the first row is the header. */
export function table (rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)))
  const line = (r) => r.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd()
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}
