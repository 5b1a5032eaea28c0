// Which part of the default path costs what: the same gateway (Redis mode, as the bench runs it) with one thing
// switched off per variant, each measured with wrk in alternating rounds; prints req/s and CPU µs per request.
//   node bench/investigate/ablate.mjs [--seconds=6] [--rounds=2] [--only=name,name] [--rate=N] [--flood]
// --rate=N: vegeta at N requests/s instead of wrk, printing latency percentiles (the bench's capacity figure).
// --flood: one client over its limit (RATE_LIMIT_MAX=10, sent until refused), wrk with its token only: refusals per
// second and CPU µs per refusal; the bare Fastify variant answers every request with the gateway's 429 instead.
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startGateway, startNodeProcess } from '../../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, startBackends, sweepClients, vegetaAttack, vegetaTargets } from '../lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, '..', '..', 'results', 'ablate')
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const seconds = Number(arg('seconds', 6))
const rounds = Number(arg('rounds', 2))
const only = arg('only', '')
const rate = Number(arg('rate', 0))
const flood = process.argv.includes('--flood')

/** vegeta at `rate`/s: latency percentiles in ms and the 2xx share. */
async function vegeta (url, secs, tokensFile) {
  const r = await vegetaAttack(vegetaTargets(url, tokensFile), rate, secs)
  const ms = (k) => (r.latencies[k] / 1e6).toFixed(1)
  return { rps: r.throughput, us: 0, text: `p50 ${ms('50th')} p90 ${ms('90th')} p99 ${ms('99th')} max ${ms('max')} ms ok ${(r.success * 100).toFixed(1)} %` }
}

const VARIANTS = {
  default: {},
  'access log off': { ACCESS_LOG: 'off' },
  'LOG_LEVEL=warn': { LOG_LEVEL: 'warn' },
  embedded: { REDIS_URL: '' },
  // Patched copies of dist/ (PATCH: [file, from, to]): a hook removed to see what it costs; never shipped.
  'no address ceiling': { PATCH: [['plugins/rate-limit.js', 'route.onRequest = [', 'if (Math.random() > 2) route.onRequest = [']] },
  'no route metrics': { PATCH: [['plugins/metrics.js', 'enabled: { histogram: true, summary: false }', 'enabled: false']] },
  'no access log or route metrics': { ACCESS_LOG: 'off', PATCH: [['plugins/metrics.js', 'enabled: { histogram: true, summary: false }', 'enabled: false']] },
  // The build before 2c1d2f0 had it on; the first occurrence is the single node's (the Cluster's keeps it on).
  'auto-pipelining on': { PATCH: [['src/lib/redis-client.js', 'enableAutoPipelining: false,', 'enableAutoPipelining: true,']] },
  'no rate limits': { PATCH: [['plugins/rate-limit.js', 'route.onRequest = [', 'if (Math.random() > 2) route.onRequest = ['], ['plugins/rate-limit.js', 'global: true', 'global: false']] },
  // Another build of the gateway (a worktree's dist/), given as ABLATE_BASELINE_DIST=/path/to/dist.
  ...(process.env.ABLATE_BASELINE_DIST ? { baseline: { DIST: process.env.ABLATE_BASELINE_DIST } } : {}),
  // Not the gateway: a bare Fastify + undici relay, or with --flood a bare Fastify 429 (floor-server.mjs): the floor.
  'bare fastify': { SCRIPT: 'floor' }
}

function wrk (url, secs, tokensFile, mode = 'many') {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', '-c50', `-d${secs}s`, '--timeout', '5s', '-s', join(BENCH, '..', 'wrk-clients.lua'), url, '--', tokensFile, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.once('exit', (code) => code === 0 ? resolve(JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH ')).slice(6))) : reject(new Error(`wrk exited ${code}`)))
  })
}
/** The flood client (the tokens file's first) sends until it is refused, so wrk measures refusals only. */
async function refuseFirstClient (url, tokensFile) {
  const [id, token] = readFileSync(tokensFile, 'utf8').split('\n')[0].split(' ')
  for (let sent = 0; sent < 100; sent++) {
    const res = await fetch(`${url}/users/${id}`, { headers: { authorization: `Bearer ${token}` } })
    await res.arrayBuffer()
    if (res.status === 429) return
  }
  throw new Error(`${url}: the flood client was never refused`)
}
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100 }

mkdirSync(OUT, { recursive: true })
const stops = []
try {
  const tokensFile = join(OUT, 'tokens.txt')
  const { redis, stubs } = await startBackends({ tokensFile, embedded: false, stops })
  const names = Object.keys(VARIANTS).filter((n) => !only || only.split(',').includes(n))
  const results = Object.fromEntries(names.map((n) => [n, []]))
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const env = { ...stubs.gatewayEnv, JWT_SECRET, JWT_TTL_SECONDS, REDIS_URL: redis.url, RATE_LIMIT_IP_MAX: '1000000000', AUDIT_LOG_PATH: join(OUT, 'audit.log'), LOG_LEVEL: 'info', ...(flood ? { RATE_LIMIT_MAX: '10', FLOOR_REFUSE: '1' } : {}), ...VARIANTS[name] }
      if (env.REDIS_URL === '') delete env.REDIS_URL
      let script
      if (env.PATCH) {
        const dir = join(OUT, `dist-${name.replaceAll(' ', '-')}`)
        rmSync(dir, { recursive: true, force: true })
        cpSync(join(BENCH, '..', '..', 'dist'), dir, { recursive: true })
        for (const [file, from, to] of env.PATCH) {
          const text = readFileSync(join(dir, file), 'utf8')
          if (!text.includes(from)) throw new Error(`${name}: ${file} has no ${from}`)
          writeFileSync(join(dir, file), text.replace(from, to))
        }
        script = join(dir, 'src', 'server.js')
        delete env.PATCH
      }
      if (env.DIST) {
        script = join(env.DIST, 'src', 'server.js')
        delete env.DIST
      }
      const gw = env.SCRIPT === 'floor'
        ? { ...await startNodeProcess('gateway', join(BENCH, 'floor-server.mjs'), { ...env, PORT: String(await freePort()) }) }
        : await startGateway(env, { script })
      if (!gw.stop) gw.stop = async () => { gw.process.kill('SIGTERM'); await new Promise((resolve) => gw.process.once('exit', resolve)) }
      try {
        if (flood) await refuseFirstClient(gw.url, tokensFile)
        else await sweepClients(gw.url, tokensFile)
        await wrk(gw.url, 2, tokensFile, flood ? 'hot' : 'many')
        const before = cpu(gw.process.pid)
        if (rate) {
          results[name].push(await vegeta(gw.url, seconds, tokensFile))
          continue
        }
        const r = await wrk(gw.url, seconds, tokensFile, flood ? 'hot' : 'many')
        // A 60 s window that resets during the run admits the client's 10 again; anything else is not a flood.
        if (flood && (r.other > 0 || r.ok > 10)) throw new Error(`${name}: ${r.ok} × 2xx and ${r.other} others among ${r.requests} flood answers`)
        const used = cpu(gw.process.pid) - before
        results[name].push({ rps: r.requests / (r.durationUs / 1e6), us: used * 1e6 / r.requests })
      } finally { await gw.stop() }
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
  for (const name of names) {
    if (rate) { console.log(`${name.padEnd(22)} ${results[name].map((x) => x.text).join('  |  ')}`); continue }
    console.log(`${name.padEnd(22)} ${results[name].map((x) => x.rps.toFixed(0)).join(' / ').padStart(20)} req/s   ${results[name].map((x) => x.us.toFixed(0)).join(' / ').padStart(12)} µs/req  (median ${median(results[name].map((x) => x.rps)).toFixed(0)} req/s)`)
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
