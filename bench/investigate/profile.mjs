// Where the gateway's time goes: runs the gateway (Redis mode, every plugin on) under `node --cpu-prof` while wrk
// drives GET /users/:id over 10 000 clients, stops it gracefully (the profile is written at exit) and prints
// bench/profile-summary.mjs's tables. The .cpuprofile and its summary stay in results/profile/.
//   node bench/profile.mjs [--seconds=20] [--embedded] [--perf]
// Also prints the gateway's user and system CPU per request from /proc (no profiler involved). On this kind of VM
// the V8 profile charges native socket writes far more than the kernel really spends (it was ~50 % of samples while
// system time was ~20 % of CPU), so --perf records the same run with Linux perf (cpu-clock, --perf-basic-prof for
// the JIT's names) instead: kernel, V8 runtime/GC and JIT code as the CPU really saw them.
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { freePort } from '../../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, recordPerf, startBackends, sweepClients } from '../lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, '..', '..', 'results', 'profile')
const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 20)
const embedded = process.argv.includes('--embedded')
const usePerf = process.argv.includes('--perf')

function wrk (url, mode, secs, tokensFile) {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', '-c50', `-d${secs}s`, '--timeout', '5s', '-s', join(BENCH, '..', 'wrk-clients.lua'), url, '--', tokensFile, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.once('exit', (code) => code === 0 ? resolve(JSON.parse(out.split('\n').find((l) => l.startsWith('BENCH ')).slice(6))) : reject(new Error(`wrk exited ${code}`)))
  })
}

// Node 20 refuses --cpu-prof in NODE_OPTIONS, so this spawns the gateway itself instead of stack.mjs's startGateway.
async function startProfiledGateway (env) {
  const port = await freePort()
  const spawnedAt = performance.now()
  const profilerFlags = usePerf ? ['--perf-basic-prof'] : ['--cpu-prof', `--cpu-prof-dir=${OUT}`]
  const child = spawn(process.execPath, [...profilerFlags, join(BENCH, '..', '..', 'dist', 'src', 'server.js')], {
    env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => { if (line.startsWith('gateway listening on')) resolve() })
    exited.then((code) => reject(new Error(`gateway exited ${code} before listening`)))
  })
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, spawnedAt, stop: async () => { if (child.exitCode === null) child.kill('SIGTERM'); await exited } }
}

/** [user, system] CPU seconds of a process so far (/proc/<pid>/stat, fields 14 and 15). */
function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100
  return [Number(fields[11]) / tck, Number(fields[12]) / tck]
}

function perfReport (data, sort, lines) {
  const out = execFileSync('perf', ['report', '-i', data, '--no-children', '--sort', sort, '-g', 'none', '--stdio'], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'ignore'] })
  return out.split('\n').filter((l) => l.trim() && !l.startsWith('#')).slice(0, lines).join('\n')
}

function redisStats (port) {
  const text = execFileSync('redis-cli', ['-p', String(port), 'INFO', 'stats'], { encoding: 'utf8' })
  return Object.fromEntries(text.split('\r\n').filter((l) => l.includes(':')).map((l) => { const [k, v] = l.split(':'); return [k, Number(v)] }))
}

mkdirSync(OUT, { recursive: true })
const stops = []
try {
  const tokensFile = join(OUT, 'tokens.txt')
  const { redis, stubs } = await startBackends({ tokensFile, embedded, stops })
  for (const f of readdirSync(OUT)) if (f.endsWith('.cpuprofile')) rmSync(join(OUT, f))
  const gateway = await startProfiledGateway({
    ...stubs.gatewayEnv,
    JWT_SECRET,
    JWT_TTL_SECONDS,
    RATE_LIMIT_MAX: '1000000000',
    LOG_LEVEL: 'warn',
    AUDIT_LOG_PATH: join(OUT, 'audit.log'),
    ...(redis ? { REDIS_URL: redis.url } : {})
  })
  stops.push(() => gateway.stop())
  await sweepClients(gateway.url, tokensFile)
  await wrk(gateway.url, 'many', 3, tokensFile)
  // The summary leaves out start-up and the warm-up sweep (every token's first, uncached verification).
  const skipS = Math.floor((performance.now() - gateway.spawnedAt) / 1000)
  const before = redis && redisStats(redis.port)
  const perfData = join(OUT, 'perf.data')
  const stopPerf = usePerf && await recordPerf(gateway.pid, perfData)
  const cpuBefore = cpuSeconds(gateway.pid)
  const r = await wrk(gateway.url, 'many', seconds, tokensFile)
  const cpuAfter = cpuSeconds(gateway.pid)
  if (stopPerf) await stopPerf()
  console.log(`wrk under ${usePerf ? 'perf' : '--cpu-prof'}: ${Math.round(r.requests / (r.durationUs / 1e6))} req/s (the profiler slows it a little)`)
  const perRequest = (i) => ((cpuAfter[i] - cpuBefore[i]) * 1e6 / r.requests).toFixed(1)
  console.log(`gateway CPU per request (/proc): ${perRequest(0)} µs user + ${perRequest(1)} µs system`)
  if (redis) {
    // How well auto-pipelining batches: Redis read events per request (1.0 = one round trip each).
    const after = redisStats(redis.port)
    const commands = after.total_commands_processed - before.total_commands_processed
    const reads = after.total_reads_processed - before.total_reads_processed
    console.log(`redis: ${(reads / r.requests).toFixed(3)} read events per request (auto-pipelining batches), ${(commands / r.requests).toFixed(2)} commands per request (a script's own calls included)`)
  }
  await gateway.stop()
  stops.pop()
  if (usePerf) {
    const report = `by binary (node = V8 runtime, builtins and GC; [JIT] = optimised JS; kernel = syscalls and scheduling)\n${perfReport(perfData, 'dso', 8)}\n\nby symbol (self)\n${perfReport(perfData, 'sym', 40)}\n`
    writeFileSync(join(OUT, 'perf-report.txt'), report)
    console.log(`\n${report}\nwritten: ${join(OUT, 'perf-report.txt')} (perf report -i ${perfData} for more)`)
  } else {
    const [file] = readdirSync(OUT).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(OUT, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
    if (!file) throw new Error('no .cpuprofile was written')
    console.log(`profile: ${file}`)
    const summary = spawn(process.execPath, [join(BENCH, 'profile-summary.mjs'), file, '--top=30', `--skip=${skipS}`, `--json=${join(OUT, 'summary.json')}`], { stdio: 'inherit' })
    await new Promise((resolve) => summary.once('exit', resolve))
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
