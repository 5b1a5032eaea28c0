// What the gateway's p99 at a fixed rate is made of: runs the gateway under `node --trace-gc` while k6 drives
// bench/fixed-rate.js at a fixed arrival rate, then prints k6's latencies next to the GC pauses of that window and
// each process's time waiting for a CPU (Linux /proc/<pid>/task/*/schedstat: ready to run, but not running).
//   npm run build && node bench/gc-pauses.mjs [--embedded | --direct] [--pin] [--rate=3000] [--seconds=10] [--node-flags='…'] [--perf=file]
// --direct drives the user stub itself with the same probe (the baseline the gateway's figures compare with);
// --pin puts the gateway alone on CPU 1 and the stubs, Redis and k6 on CPU 0 (taskset): is the tail the sharing?
// --perf=<file> records the gateway with Linux perf (cpu-clock, JIT names) during the k6 run; `perf report -i <file>`.
// --node-flags='--a --b' replaces the gateway's Node flags (default: the start commands' own, GATEWAY_NODE_ARGS).
// Node refuses --trace-gc in NODE_OPTIONS, so this spawns the gateway itself (as bench/profile.mjs does).
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { k6Binary } from '../../scripts/lib/k6.mjs'
import { promSample } from '../../scripts/lib/loadgen.mjs'
import { GATEWAY_NODE_ARGS, freePort, waitFor } from '../../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, recordPerf, startBackends, sweepClients } from '../lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const embedded = process.argv.includes('--embedded')
const direct = process.argv.includes('--direct')
const pin = process.argv.includes('--pin')
const perfData = arg('perf', undefined)
const nodeFlags = process.argv.find((a) => a.startsWith('--node-flags='))?.slice('--node-flags='.length).split(' ').filter(Boolean) ?? GATEWAY_NODE_ARGS
const rate = Number(arg('rate', 3000))
const seconds = Number(arg('seconds', 10))
const K6 = k6Binary()

/** [on-CPU ns, run-queue wait ns] of one thread, or of all a process's threads; zeros once it is gone. */
function schedstat (pid, thread) {
  try {
    const tids = thread === undefined ? readdirSync(`/proc/${pid}/task`) : [String(thread)]
    return tids.reduce(([run, wait], tid) => {
      const [r, w] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number)
      return [run + r, wait + w]
    }, [0, 0])
  } catch { return [0, 0] }
}

// The gateway's own view of the same requests: how many its histograms saw finish within each bucket, which splits
// k6's latency into time inside the gateway (route histogram) and the upstream hop (gateway_upstream_*).
const HISTOGRAMS = [['inside the gateway (route histogram)', 'http_request_duration_seconds_bucket', { route: '/users/:id' }], ['upstream hop (user stub)', 'gateway_upstream_request_duration_seconds_bucket', { upstream: 'user' }]]
const BUCKETS = ['0.001', '0.0025', '0.005', '0.01', '0.025', '+Inf']
/** Per histogram, the cumulative count of each bucket in BUCKETS (summed over methods and statuses). */
async function histogramCounts (gatewayUrl) {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text()
  return HISTOGRAMS.map(([, name, labels]) => BUCKETS.map((le) => promSample(text, name, { ...labels, le })))
}

const tmp = mkdtempSync(join(tmpdir(), 'gw-gc-'))
const stops = [async () => rmSync(tmp, { recursive: true, force: true })]
try {
  const tokensFile = join(tmp, 'tokens.txt')
  const { redis, stubs } = await startBackends({ tokensFile, embedded, stops })

  const port = await freePort()
  const gateway = spawn(process.execPath, [...nodeFlags, ...(perfData ? ['--perf-basic-prof'] : []), '--trace-gc', join(BENCH, '..', '..', 'dist', 'src', 'server.js')], {
    env: { ...process.env, ...stubs.gatewayEnv, JWT_SECRET, JWT_TTL_SECONDS, LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '1000000000', AUDIT_LOG_PATH: join(tmp, 'audit.log'), PORT: String(port), ...(redis ? { REDIS_URL: redis.url } : {}) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  stops.push(async () => { if (gateway.exitCode === null) { gateway.kill('SIGTERM'); await new Promise((resolve) => gateway.once('exit', resolve)) } })
  let output = ''
  gateway.stdout.on('data', (chunk) => { output += chunk })
  await waitFor(() => output.includes('gateway listening on'), { what: 'the gateway', timeoutMs: 20_000 })
  const url = direct ? stubs.gatewayEnv.USER_URL : `http://127.0.0.1:${port}`
  await sweepClients(url, tokensFile)

  if (pin) {
    execFileSync('taskset', ['-a', '-pc', '1', String(gateway.pid)], { stdio: 'ignore' })
    const others = [stubs.auth, stubs.user, stubs.order].map((stub) => stub.process.pid).concat(redis ? [redis.process.pid] : [])
    for (const pid of others) execFileSync('taskset', ['-a', '-pc', '0', String(pid)], { stdio: 'ignore' })
  }
  const from = output.length
  const summaryPath = join(tmp, 'k6.json')
  // The gateway's main thread is its event loop; the others are sampled whole.
  const watched = [['gateway event loop', gateway.pid, gateway.pid], ['user stub', stubs.user.process.pid], ...(redis ? [['redis-server', redis.process.pid]] : [])]
  const gatewayUrl = `http://127.0.0.1:${port}`
  const countsBefore = await histogramCounts(gatewayUrl)
  const before = watched.map(([, pid, tid]) => schedstat(pid, tid))
  const stopPerf = perfData && await recordPerf(gateway.pid, perfData)
  let k6Pid
  let k6Sched = [0, 0]
  const k6Sampler = setInterval(() => { if (k6Pid) k6Sched = schedstat(k6Pid) }, 200)
  await new Promise((resolve, reject) => {
    const k6 = spawn(pin ? 'taskset' : K6, [...(pin ? ['-c', '0', K6] : []), 'run', '--quiet', '--no-color', '-e', `BASE_URL=${url}`, '-e', `RATE=${rate}`, '-e', `DURATION=${seconds}s`,
      '-e', `TOKENS_FILE=${tokensFile}`, '-e', `SUMMARY_PATH=${summaryPath}`, join(BENCH, 'fixed-rate.js')], { stdio: 'ignore', env: { ...process.env, K6_NO_USAGE_REPORT: 'true' } })
    k6Pid = k6.pid
    k6.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`k6 exited ${code}`)))
  })
  clearInterval(k6Sampler)
  if (stopPerf) await stopPerf()
  const after = watched.map(([, pid, tid]) => schedstat(pid, tid))
  const k6 = JSON.parse(readFileSync(summaryPath, 'utf8'))
  const countsAfter = await histogramCounts(gatewayUrl)
  const pauses = { Scavenge: [], 'Mark-Compact': [] }
  for (const line of output.slice(from).split('\n')) {
    const match = /ms: (Scavenge|Mark-Compact).* MB, ([\d.]+) \/ [\d.]+ ms/.exec(line)
    if (match) pauses[match[1]].push(Number(match[2]))
  }
  const describe = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length ? `${s.length} pauses, median ${s[s.length >> 1].toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms, ${s.reduce((a, b) => a + b, 0).toFixed(0)} ms in all` : 'none'
  }
  const target = (direct ? 'user stub direct' : `gateway (${embedded ? 'embedded' : 'Redis'} mode, node ${nodeFlags.join(' ')})`) + (pin ? ', gateway pinned to CPU 1, the rest to CPU 0' : '')
  console.log(`${target} at ${rate}/s for ${seconds}s: p50 ${k6.p50Ms.toFixed(2)} ms, p99 ${k6.p99Ms.toFixed(2)} ms, max ${k6.maxMs.toFixed(1)} ms, ${k6.droppedIterations} arrivals dropped`)
  console.log(`  gateway scavenges:     ${describe(pauses.Scavenge)}${direct ? ' (idle gateway)' : ''}`)
  console.log(`  gateway mark-compacts: ${describe(pauses['Mark-Compact'])} (the final pause; incremental marking steps come on top)`)
  if (!direct) {
    console.log('  share of these requests the gateway saw finish within 1 / 2.5 / 5 / 10 / 25 ms:')
    HISTOGRAMS.forEach(([label], h) => {
      const delta = BUCKETS.map((_, b) => countsAfter[h][b] - countsBefore[h][b])
      const total = delta[delta.length - 1]
      console.log(`    ${label.padEnd(38)} ${delta.slice(0, -1).map((n) => `${(100 * n / total).toFixed(2)} %`).join(' / ')} of ${total}`)
    })
  }
  const perSecond = (ns) => `${(ns / 1e6 / seconds).toFixed(0)} ms/s`
  // CPU per request at this rate, to set beside the wrk runs' figure at full speed (fewer requests share each wake-up).
  const perRequest = (ns) => `${(ns / 1e3 / (k6.requests || 1)).toFixed(0)} µs/req`
  console.log('  CPU time, and time waiting for a CPU while runnable (schedstat), per second of the run (k6\'s last sample is up to 0.2 s early):')
  watched.forEach(([name], i) => console.log(`    ${name.padEnd(20)} on CPU ${perSecond(after[i][0] - before[i][0])} (${perRequest(after[i][0] - before[i][0])}), waiting ${perSecond(after[i][1] - before[i][1])}`))
  console.log(`    ${'k6 (all threads)'.padEnd(20)} on CPU ${perSecond(k6Sched[0])} (${perRequest(k6Sched[0])}), waiting ${perSecond(k6Sched[1])}`)
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
