// What the gateway's p99 at a fixed rate is made of: runs the gateway under `node --trace-gc` while k6 drives
// bench/fixed-rate.js at a fixed arrival rate, then prints k6's latencies next to the GC pauses of that window and
// each process's time waiting for a CPU (Linux /proc/<pid>/task/*/schedstat: ready to run, but not running).
//   npm run build && node bench/gc-pauses.mjs [--embedded] [--rate=3000] [--seconds=10]
// Node refuses --trace-gc in NODE_OPTIONS, so this spawns the gateway itself (as bench/profile.mjs does).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, waitFor } from '../scripts/lib/stack.mjs'
import { JWT_SECRET, startBackends, sweepClients } from './lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const embedded = process.argv.includes('--embedded')
const rate = Number(arg('rate', 3000))
const seconds = Number(arg('seconds', 10))
const K6 = process.env.K6_BIN ?? join(BENCH, '..', '.cache', 'bin', 'k6')

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

const tmp = mkdtempSync(join(tmpdir(), 'gw-gc-'))
const stops = [async () => rmSync(tmp, { recursive: true, force: true })]
try {
  const tokensFile = join(tmp, 'tokens.txt')
  const { redis, stubs } = await startBackends({ tokensFile, embedded, stops })

  const port = await freePort()
  const gateway = spawn(process.execPath, ['--trace-gc', join(BENCH, '..', 'dist', 'src', 'server.js')], {
    env: { ...process.env, ...stubs.gatewayEnv, JWT_SECRET, LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '1000000000', AUDIT_LOG_PATH: join(tmp, 'audit.log'), PORT: String(port), ...(redis ? { REDIS_URL: redis.url } : {}) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  stops.push(async () => { if (gateway.exitCode === null) { gateway.kill('SIGTERM'); await new Promise((resolve) => gateway.once('exit', resolve)) } })
  let output = ''
  gateway.stdout.on('data', (chunk) => { output += chunk })
  await waitFor(() => output.includes('gateway listening on'), { what: 'the gateway', timeoutMs: 20_000 })
  const url = `http://127.0.0.1:${port}`
  await sweepClients(url, tokensFile)

  const from = output.length
  const summaryPath = join(tmp, 'k6.json')
  // The gateway's main thread is its event loop; the others are sampled whole.
  const watched = [['gateway event loop', gateway.pid, gateway.pid], ['user stub', stubs.user.process.pid], ...(redis ? [['redis-server', redis.process.pid]] : [])]
  const before = watched.map(([, pid, tid]) => schedstat(pid, tid))
  let k6Pid
  let k6Sched = [0, 0]
  const k6Sampler = setInterval(() => { if (k6Pid) k6Sched = schedstat(k6Pid) }, 200)
  await new Promise((resolve, reject) => {
    const k6 = spawn(K6, ['run', '--quiet', '--no-color', '-e', `BASE_URL=${url}`, '-e', `RATE=${rate}`, '-e', `DURATION=${seconds}s`,
      '-e', `TOKENS_FILE=${tokensFile}`, '-e', `SUMMARY_PATH=${summaryPath}`, join(BENCH, 'fixed-rate.js')], { stdio: 'ignore', env: { ...process.env, K6_NO_USAGE_REPORT: 'true' } })
    k6Pid = k6.pid
    k6.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`k6 exited ${code}`)))
  })
  clearInterval(k6Sampler)
  const after = watched.map(([, pid, tid]) => schedstat(pid, tid))
  const k6 = JSON.parse(readFileSync(summaryPath, 'utf8'))
  const pauses = { Scavenge: [], 'Mark-Compact': [] }
  for (const line of output.slice(from).split('\n')) {
    const match = /ms: (Scavenge|Mark-Compact).* MB, ([\d.]+) \/ [\d.]+ ms/.exec(line)
    if (match) pauses[match[1]].push(Number(match[2]))
  }
  const describe = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length ? `${s.length} pauses, median ${s[s.length >> 1].toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms, ${s.reduce((a, b) => a + b, 0).toFixed(0)} ms in all` : 'none'
  }
  console.log(`gateway (${embedded ? 'embedded' : 'Redis'} mode) at ${rate}/s for ${seconds}s: p50 ${k6.p50Ms.toFixed(2)} ms, p99 ${k6.p99Ms.toFixed(2)} ms, max ${k6.maxMs.toFixed(1)} ms, ${k6.droppedIterations} arrivals dropped`)
  console.log(`  scavenges:     ${describe(pauses.Scavenge)}`)
  console.log(`  mark-compacts: ${describe(pauses['Mark-Compact'])} (the final pause; incremental marking steps come on top)`)
  const perSecond = (ns) => `${(ns / 1e6 / seconds).toFixed(0)} ms/s`
  console.log(`  waiting for a CPU while runnable (schedstat), per second of the run (k6's last sample is up to 0.2 s early):`)
  watched.forEach(([name], i) => console.log(`    ${name.padEnd(20)} on CPU ${perSecond(after[i][0] - before[i][0])}, waiting ${perSecond(after[i][1] - before[i][1])}`))
  console.log(`    ${'k6 (all threads)'.padEnd(20)} on CPU ${perSecond(k6Sched[0])}, waiting ${perSecond(k6Sched[1])}`)
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
