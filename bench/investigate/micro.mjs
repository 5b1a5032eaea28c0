// Per-request costs of single pieces of the gateway's path, measured in one process (ns per operation, the best of
// several interleaved rounds, so a busy machine inflates them less than it inflates req/s). Each line pairs what the
// gateway does now with what it did before or a cheaper alternative weighed in docs/PERFORMANCE.md.
//   npm run build && node bench/micro.mjs
import { randomUUID } from 'node:crypto'
import CircuitBreaker from 'opossum'
import pino from 'pino'
import promClient from 'prom-client'
import { createSigner, createVerifier } from 'fast-jwt'
import { createTokenVerifier } from '../../dist/src/lib/jwt.js'
import { ThresholdBreaker } from '../../dist/src/lib/threshold-breaker.js'

const ROUNDS = 7
const SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz'

async function measure (cases) {
  const best = Object.fromEntries(Object.keys(cases).map((k) => [k, Infinity]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, { n, run }] of Object.entries(cases)) {
      const t0 = process.hrtime.bigint()
      await run(n)
      best[name] = Math.min(best[name], Number(process.hrtime.bigint() - t0) / n)
    }
  }
  for (const [name, ns] of Object.entries(best)) console.log(`  ${String(Math.round(ns)).padStart(7)} ns  ${name}`)
}

// --- JWT: a cached verification (10 000 clients)
const sign = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 3_600_000, iss: 'gateway-auth', aud: 'gateway' })
const tokens = Array.from({ length: 10_000 }, (_, i) => sign({ sub: `load_test_${i}` }))
const fastJwtCached = createVerifier({ key: SECRET, algorithms: ['HS256'], cache: 10_000 })
const ours = createTokenVerifier(SECRET)
for (const t of tokens) { fastJwtCached(t); ours(t) }
const uncached = createVerifier({ key: SECRET, algorithms: ['HS256'] })
console.log('JWT verify (token seen before; src/lib/jwt.ts)')
await measure({
  'before: fast-jwt cache (SHA-256 of the token as the key)': { n: 100_000, run: (n) => { for (let i = 0; i < n; i++) fastJwtCached(tokens[(i * 7919) % 10_000]) } },
  'now: Map keyed on the token string': { n: 100_000, run: (n) => { for (let i = 0; i < n; i++) ours(tokens[(i * 7919) % 10_000]) } },
  'for scale: no cache (HMAC every time)': { n: 20_000, run: (n) => { for (let i = 0; i < n; i++) uncached(tokens[i % 10_000]) } }
})

// --- metrics: the route histogram (fastify-metrics) and the upstream histogram (plugins/proxy.ts)
const registry = new promClient.Registry()
const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
const routeHist = new promClient.Histogram({ name: 'route_seconds', help: 'h', labelNames: ['method', 'route', 'status_code'], buckets, registers: [registry] })
const upstreamHist = new promClient.Histogram({ name: 'up_seconds', help: 'h', labelNames: ['upstream', 'outcome'], buckets, registers: [registry] })
const routeChild = routeHist.labels({ method: 'GET', route: '/users/:id', status_code: 200 })
const upstreamChild = upstreamHist.labels({ upstream: 'user', outcome: 'success' })
// The proposal's shape: fixed buckets counted in a typed array per label set, turned into series at scrape time.
const counts = new Map()
function observeFlat (key, seconds) {
  let c = counts.get(key)
  if (c === undefined) counts.set(key, c = { buckets: new Float64Array(buckets.length + 1), sum: 0, count: 0 })
  let i = 0
  while (i < buckets.length && seconds > buckets[i]) i++
  c.buckets[i]++
  c.sum += seconds
  c.count++
}
console.log('histogram observations per request (plugins/metrics.ts via fastify-metrics, plugins/proxy.ts)')
await measure({
  'now: route histogram, fastify-metrics style (startTimer at onRequest, end with labels at onResponse)': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const end = routeHist.startTimer(); end({ method: 'GET', route: '/users/:id', status_code: 200 }) } }
  },
  'before: upstream histogram (startTimer({upstream}) then end({outcome}))': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const end = upstreamHist.startTimer({ upstream: 'user' }); end({ outcome: 'success' }) } }
  },
  'now: upstream histogram, plugins/proxy.ts (performance.now() + a child bound once)': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const t = performance.now(); upstreamChild.observe((performance.now() - t) / 1000) } }
  },
  'both histograms through bound children': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const t = performance.now(); routeChild.observe((performance.now() - t) / 1000); upstreamChild.observe(0.001) } }
  },
  'proposal: both as flat bucket counters (Map key + typed array), exposed at scrape': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const t = performance.now(); observeFlat('GET /users/:id 200', (performance.now() - t) / 1000); observeFlat('user success', 0.001) } }
  }
})

// --- breaker: one call through the owned state machine (src/lib/threshold-breaker.ts) vs opossum vs a plain counter
const action = () => Promise.resolve(1)
const threshold = new ThresholdBreaker({ name: 'user', failureThreshold: 5, successThreshold: 3, resetTimeoutMs: 60_000 })
const raw = new CircuitBreaker(action, { timeout: false, resetTimeout: 60_000 })
const rawLean = new CircuitBreaker(action, { timeout: false, resetTimeout: 60_000, rollingPercentilesEnabled: false, enableSnapshots: false })
let failures = 0
const plain = async (fn) => { if (failures >= 5) throw new Error('open'); try { const r = await fn(); failures = 0; return r } catch (err) { failures++; throw err } }
console.log('circuit breaker, one successful call (awaited)')
await measure({
  'now: ThresholdBreaker.fire (the owned state machine, src/lib/threshold-breaker.ts)': { n: 50_000, run: async (n) => { for (let i = 0; i < n; i++) await threshold.fire(action) } },
  'before: opossum alone with its defaults (a latency pushed per call, snapshots)': { n: 50_000, run: async (n) => { for (let i = 0; i < n; i++) await raw.fire() } },
  'opossum alone, rollingPercentilesEnabled: false': { n: 50_000, run: async (n) => { for (let i = 0; i < n; i++) await rawLean.fire() } },
  'proposal: a counter around the call (state checked, failures counted)': { n: 50_000, run: async (n) => { for (let i = 0; i < n; i++) await plain(action) } },
  'for scale: the bare await': { n: 50_000, run: async (n) => { for (let i = 0; i < n; i++) await action() } }
})
threshold.shutdown()
raw.shutdown()
rawLean.shutdown()

// --- upstream deadline (plugins/upstreams.ts)
console.log('upstream deadline per call (plugins/upstreams.ts)')
await measure({
  'before: new AbortController + setTimeout + clearTimeout + a listener (what undici added)': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const c = new AbortController(); const t = setTimeout(() => c.abort(), 5000); c.signal.addEventListener('abort', action); c.signal.removeEventListener('abort', action); clearTimeout(t) } }
  },
  'now: setTimeout + clearTimeout (the dispatch handler aborts through undici\'s controller)': {
    n: 100_000, run: (n) => { for (let i = 0; i < n; i++) { const t = setTimeout(action, 5000); clearTimeout(t) } }
  }
})

// --- per-request logger and id (Fastify creates both for every request)
// sync: the destination is never written to here, and an async one is not "ready" when process.exit flushes it.
const logger = pino({ level: 'warn' }, pino.destination({ dest: '/dev/null', sync: true }))
console.log('per-request logger child and request id (src/app.ts)')
await measure({
  'logger.child({ reqId }) (Fastify does this per request)': { n: 100_000, run: (n) => { for (let i = 0; i < n; i++) logger.child({ reqId: 'x' + i }) } },
  'randomUUID() (genReqId)': { n: 100_000, run: (n) => { for (let i = 0; i < n; i++) randomUUID() } }
})
process.exit(0)
