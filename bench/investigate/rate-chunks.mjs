// How steady the tail is at a fixed rate: one gateway (Redis mode as the bench runs it, or --embedded) under vegeta at
// --rate for --chunks runs of 5 s, each chunk's p50 / p99 / max printed, then its GC from --trace-gc: scavenges and
// their median pause, mark-compacts, MB freed and MB kept (survivors) per scavenge.
//   node bench/investigate/rate-chunks.mjs [--rate=1000] [--chunks=4] [--embedded] [--dist=/path/to/dist] [--floor]
// --dist: another build of the gateway (a patched copy of dist/ inside this repository, so its imports resolve);
// --floor: not the gateway but floor-server.mjs, a bare Fastify + undici relay (what any Fastify proxy allocates).
import { mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGateway } from '../../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, startBackends, sweepClients, vegetaAttack, vegetaTargets } from '../lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, '..', '..', 'results', 'rate-chunks')
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const rate = Number(arg('rate', 1000))
const chunks = Number(arg('chunks', 4))
const dist = arg('dist', undefined)
const embedded = process.argv.includes('--embedded')
const floor = process.argv.includes('--floor')

/** Scavenges, their median pause, mark-compacts, and per scavenge the MB freed and the MB its survivors added. */
function gcSummary (output) {
  const scavenges = [...output.matchAll(/Scavenge ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \//g)].map((m) => ({ before: Number(m[1]), after: Number(m[2]), pauseMs: Number(m[3]) }))
  const markCompacts = (output.match(/Mark-Compact /g) ?? []).length
  const pauses = scavenges.map((s) => s.pauseMs).sort((a, b) => a - b)
  // Growth of the heap after a scavenge from one to the next, skipping the drops a mark-compact makes in between.
  const growth = scavenges.slice(1).map((s, i) => s.after - scavenges[i].after).filter((d) => d > -2)
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1)
  return `${scavenges.length} scavenges (median pause ${pauses[Math.floor(pauses.length / 2)]} ms, max ${pauses.at(-1)} ms), ${markCompacts} mark-compacts; ` +
    `per scavenge ${mean(scavenges.map((s) => s.before - s.after)).toFixed(1)} MB freed, ${mean(growth).toFixed(2)} MB kept`
}

mkdirSync(OUT, { recursive: true })
const stops = []
try {
  const tokensFile = join(OUT, 'tokens.txt')
  const { redis, stubs } = await startBackends({ tokensFile, embedded, stops })
  const env = { ...stubs.gatewayEnv, JWT_SECRET, JWT_TTL_SECONDS, ...(redis ? { REDIS_URL: redis.url } : {}), RATE_LIMIT_IP_MAX: '1000000000', LOG_LEVEL: 'info', AUDIT_LOG_PATH: join(OUT, 'audit.log') }
  const gw = await startGateway(env, { output: 'capture', nodeArgs: ['--trace-gc'], script: floor ? join(BENCH, 'floor-server.mjs') : dist ? join(dist, 'src', 'server.js') : undefined })
  stops.push(() => gw.stop())
  const started = Date.now()
  await sweepClients(gw.url, tokensFile)
  const targets = vegetaTargets(gw.url, tokensFile)
  const gcFrom = gw.output().length
  for (let i = 0; i < chunks; i++) {
    const r = await vegetaAttack(targets, rate, 5)
    const ms = (k) => (r.latencies[k] / 1e6).toFixed(1)
    console.log(`t+${((Date.now() - started) / 1000).toFixed(0)} s: p50 ${ms('50th')} ms, p99 ${ms('99th')} ms, max ${ms('max')} ms, ${(r.success * 100).toFixed(2)} % 2xx`)
  }
  console.log(`${floor ? 'bare Fastify relay' : embedded ? 'embedded' : 'Redis mode'}${dist ? ` (${dist})` : ''} at ${rate}/s: ${gcSummary(gw.output().slice(gcFrom))}`)
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
