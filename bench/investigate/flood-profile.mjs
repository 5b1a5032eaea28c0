// Where a flood's refusals spend their time: one client far over its limit (RATE_LIMIT_MAX=10), wrk with its one
// token for --seconds, the gateway (Redis mode, as the bench runs it) under --cpu-prof; prints profile-summary.mjs's
// tables and the refusals per second and CPU per refusal.
//   node bench/investigate/flood-profile.mjs [--seconds=8]
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGateway } from '../../scripts/lib/stack.mjs'
import { JWT_SECRET, JWT_TTL_SECONDS, startBackends } from '../lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, '..', '..', 'results', 'flood-profile')
const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 8)
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100 }

rmSync(OUT, { recursive: true, force: true })
mkdirSync(OUT, { recursive: true })
const stops = []
try {
  const tokensFile = join(OUT, 'tokens.txt')
  const { redis, stubs } = await startBackends({ tokensFile, embedded: false, stops })
  const gw = await startGateway({ ...stubs.gatewayEnv, JWT_SECRET, JWT_TTL_SECONDS, REDIS_URL: redis.url, RATE_LIMIT_MAX: '10', RATE_LIMIT_IP_MAX: '1000000000', LOG_LEVEL: 'info' }, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${OUT}`] })
  stops.push(() => gw.stop())
  const [id, token] = readFileSync(tokensFile, 'utf8').split('\n')[0].split(' ')
  for (let i = 0; i < 11; i++) await (await fetch(`${gw.url}/users/${id}`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer()
  const before = cpu(gw.process.pid)
  const out = await new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', '-c50', `-d${seconds}s`, '-s', join(BENCH, '..', 'wrk-clients.lua'), gw.url, '--', tokensFile, 'hot'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    child.stdout.on('data', (d) => { text += d })
    child.once('exit', (code) => code === 0 ? resolve(JSON.parse(text.split('\n').find((l) => l.startsWith('BENCH ')).slice(6))) : reject(new Error(`wrk exited ${code}`)))
  })
  const used = cpu(gw.process.pid) - before
  console.log(`flood: ${Math.round(out.requests / (out.durationUs / 1e6))} answers/s, ${(used * 1e6 / out.requests).toFixed(0)} µs CPU per answer, statuses ${JSON.stringify(out.statuses ?? {})}`)
  await gw.stop()
  stops.pop()
  const [file] = readdirSync(OUT).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(OUT, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  const summary = spawn(process.execPath, [join(BENCH, 'profile-summary.mjs'), file, '--top=40'], { stdio: 'inherit' })
  await new Promise((resolve) => summary.once('exit', resolve))
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
