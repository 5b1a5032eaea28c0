#!/usr/bin/env node
// npm run probe: replays the reproductions of issue 12's nine findings against gateways started as a user would, and
// prints one line per finding: `finding N <name>: held` or `failed (<what it saw>)`; exit 1 if any failed.
//   A  `npm start`: node dist/src/main.js (three stubs and the gateway) with the default env on free ports
//   B  the Docker image's command and ENV (HOST=0.0.0.0): must refuse to start without JWT_SECRET; then started with
//      one (on 127.0.0.1: the probe never listens off loopback) beside its stubs, with the lab settings it needs
//   C  a gateway with TRUST_PROXY=1 whose user upstream is the probe's own hostile server (50 MB of HTML)
// Loopback only; every client address is its own 127.0.0.x, so one finding's flood never limits another's probe.
// Bounded: ~30 000 requests, PROBE_TIMEOUT_S (600) at most (a watchdog prints what it has and exits 2), every process stopped at the end.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, STATUS_CODES } from 'node:http'
import { connect } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createSigner } from 'fast-jwt'
import { Agent, request } from 'undici'
import { parse as parseYaml } from 'yaml'
import { ROOT, freePort, waitFor } from './lib/stack.mjs'

const DIST = join(ROOT, 'dist', 'src')
const WATCHDOG_MS = Number(process.env.PROBE_TIMEOUT_S ?? 600) * 1000
const SECRET = `probe-secret-${Math.random().toString(36).slice(2)}-0123456789abcdef`
// B's and C's gateways and B's stubs share it, as compose and a real deployment set one STUB_CREDENTIAL for all.
const CREDENTIAL = `probe-credential-${Math.random().toString(36).slice(2)}-0123456789abcdef`
const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' }
const envExample = Object.fromEntries(readFileSync(join(ROOT, '.env.example'), 'utf8').split('\n').filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
const num = (name, fallback) => Number(envExample[name] || fallback)

const children = []
const dir = mkdtempSync(join(tmpdir(), 'gw-probe-'))
// Each child leads its own process group, so a kill reaches the stubs `npm start` forks too.
const cleanup = () => {
  for (const child of children) try { process.kill(-child.pid, 'SIGKILL') } catch {}
  rmSync(dir, { recursive: true, force: true })
}
process.on('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130))
setTimeout(() => { console.error(`probe: watchdog: not done in ${WATCHDOG_MS / 1000} s (PROBE_TIMEOUT_S)`); report(); process.exit(2) }, WATCHDOG_MS).unref()

// --- processes ------------------------------------------------------------------------------------------------
/** Spawns node with only PATH/HOME from this shell (the default env is the point), waits for `<name> listening on`. */
function start (name, script, env, { nodeArgs = [], timeoutMs = 150_000 } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, script], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  children.push(child)
  const proc = { child, stdout: [], stderr: '' }
  child.stderr.on('data', (chunk) => { proc.stderr = (proc.stderr + chunk).slice(-4000) })
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => proc.stdout.push(line))
  proc.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not listening after ${timeoutMs} ms`)), timeoutMs)
    lines.on('line', (line) => { if (line.startsWith(`${name} listening on `)) { clearTimeout(timer); resolve(line) } })
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${name} exited ${code ?? signal}: ${proc.stderr.trim().split('\n').pop()}`)) })
  })
  proc.ready.catch(() => {}) // awaited later, maybe after it fails
  proc.stop = async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await once(child, 'exit') } }
  return proc
}

// --- clients --------------------------------------------------------------------------------------------------
const agents = new Map()
/** An undici agent whose sockets leave from `from` (127.0.0.x): that is the client address the gateway sees. */
const agentFrom = (from) => agents.get(from) ?? agents.set(from, new Agent({ connections: 16, localAddress: from })).get(from)
async function http (url, { from = '127.0.0.1', method = 'GET', headers = {}, body } = {}) {
  const res = await request(url, { method, dispatcher: agentFrom(from), headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: 20_000, bodyTimeout: 20_000 })
  const text = await res.body.text()
  let json
  try { json = JSON.parse(text) } catch {}
  return { status: res.statusCode, headers: res.headers, text, json }
}
/** `count` requests, `concurrency` at a time; returns how many got each status. */
async function flood (count, concurrency, make) {
  const statuses = {}
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++
      const status = await make(i).then((r) => r.status, (err) => err.code ?? 'error')
      statuses[status] = (statuses[status] ?? 0) + 1
    }
  }))
  return statuses
}
/** Raw bytes on a fresh socket from `from`; resolves when the server closes it or at `deadlineMs`. */
function raw (port, bytes, { from = '127.0.0.1', deadlineMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const started = Date.now()
    const chunks = []
    const socket = connect({ host: '127.0.0.1', port, localAddress: from })
    let closedByServer = true
    const timer = setTimeout(() => { closedByServer = false; socket.destroy() }, deadlineMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started, closedByServer }) })
    if (bytes) socket.write(bytes)
  })
}
const statusOf = (text) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
const headOf = (text) => Object.fromEntries(text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
const bodyOf = (text) => { try { return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) } catch { return undefined } }
const sign = (payload, key) => createSigner({ key, algorithm: 'HS256', noTimestamp: true })(payload)
const now = () => Math.floor(Date.now() / 1000)

// --- results --------------------------------------------------------------------------------------------------
const results = new Map()
// Figures for the closing note: connection cap held, audit lines for a 20 000-denial flood, guesses per account.
let capFigure = ''
let auditFigure = ''
let guessesAnswered = 0
/** Runs one finding's probe: `check` returns [] when held, else what it saw. A probe that throws has failed. */
async function finding (n, name, check) {
  let problems
  try { problems = await check() } catch (err) { problems = [`probe error: ${err.message}`] }
  results.set(n, { name, problems })
}

/** One line per finding (a finding not reached by the watchdog counts as failed); returns how many failed. */
function report () {
  let failed = 0
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
    const { name, problems } = results.get(n) ?? { name: '', problems: ['not reached before the watchdog'] }
    if (problems.length) failed++
    console.log(`finding ${n} ${name}: ${problems.length ? `failed (${problems.join('; ')})` : 'held'}`)
  }
  console.log(`probe figures: ${capFigure}; ${auditFigure}; ${guessesAnswered} demo guesses answered 401 in this run`)
  return failed
}

// --- the stacks -----------------------------------------------------------------------------------------------
const ports = { PORT: await freePort(), AUTH_PORT: await freePort(), USER_PORT: await freePort(), ORDER_PORT: await freePort() }
const auditPath = join(dir, 'audit.jsonl')
// A: `npm start` as a user runs it; AUDIT_LOG_PATH so finding 8 can count audit lines, LOG_LEVEL left at its default.
const A = start('gateway', join(DIST, 'main.js'), { ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), AUDIT_LOG_PATH: auditPath }, { nodeArgs: ['--max-old-space-size=1024'] })
const a = `http://127.0.0.1:${ports.PORT}`

// B: the Docker image: its CMD and ENV. First without JWT_SECRET (it must refuse), then with one.
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const dockerEnv = Object.fromEntries([...dockerfile.matchAll(/^ENV\s+([A-Z_]+)=(\S+)/gm)].map((m) => [m[1], m[2]]))
const dockerCmd = JSON.parse(/^CMD\s+(\[.*\])/m.exec(dockerfile)[1])
const refusal = start('gateway', join(ROOT, dockerCmd.at(-1)), { ...dockerEnv, PORT: String(await freePort()) }, { nodeArgs: dockerCmd.slice(1, -1), timeoutMs: 15_000 })
const refused = await refusal.ready.then(() => 'started and listened', (err) => err.message)
await refusal.stop()

const bPorts = { auth: await freePort(), user: await freePort(), order: await freePort() }
const stubEnv = { JWT_SECRET: SECRET, STUB_CREDENTIAL: CREDENTIAL, STUB_SIGNUP: 'load_test', HOST: '127.0.0.1' }
const bStubs = ['auth', 'user', 'order'].map((name) => start(name, join(DIST, 'services', name, 'main.js'), { ...stubEnv, [`${name.toUpperCase()}_PORT`]: String(bPorts[name]) }))
const bPort = await freePort()
const upstreamEnv = { AUTH_URL: `http://127.0.0.1:${bPorts.auth}`, USER_URL: `http://127.0.0.1:${bPorts.user}`, ORDER_URL: `http://127.0.0.1:${bPorts.order}` }
// HOST kept on loopback (the probe never listens off it); the rest is the image's env plus what findings 2 and 6 need.
const B = start('gateway', join(ROOT, dockerCmd.at(-1)), { ...dockerEnv, HOST: '127.0.0.1', PORT: String(bPort), JWT_SECRET: SECRET, STUB_CREDENTIAL: CREDENTIAL, ...upstreamEnv, RATE_LIMIT_MAX: '5', RATE_LIMIT_IP_MAX: '50', LOG_LEVEL: 'warn' }, { nodeArgs: dockerCmd.slice(1, -1) })
const b = `http://127.0.0.1:${bPort}`

// C: behind one proxy hop, with a hostile user upstream (50 MB of text/html).
const hostile = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html', 'content-length': 50 * 1024 * 1024 })
  const chunk = Buffer.alloc(1024 * 1024, 'a')
  let sent = 0
  const pump = () => { while (sent < 50 && res.write(chunk)) sent++; if (sent >= 50) res.end(); else res.once('drain', () => { sent++; pump() }) }
  pump()
  req.socket.on('error', () => {})
})
hostile.listen(0, '127.0.0.1')
await once(hostile, 'listening')
const cPort = await freePort()
const C = start('gateway', join(DIST, 'server.js'), { PORT: String(cPort), JWT_SECRET: SECRET, STUB_CREDENTIAL: CREDENTIAL, ...upstreamEnv, USER_URL: `http://127.0.0.1:${hostile.address().port}`, TRUST_PROXY: '1', RATE_LIMIT_MAX: '3', RATE_LIMIT_KEY: 'ip', LOG_LEVEL: 'warn' })
const c = `http://127.0.0.1:${cPort}`

const startErrors = {}
for (const [name, proc] of [['A (npm start)', A], ['B (Docker env)', B], ['C (TRUST_PROXY=1)', C], ...bStubs.map((s, i) => [`B's ${['auth', 'user', 'order'][i]} stub`, s])]) {
  await proc.ready.catch((err) => { startErrors[name] = err.message })
}
const down = (...names) => names.filter((n) => startErrors[n]).map((n) => `${n} did not start: ${startErrors[n]}`)

// Finding 4's held body runs from the start: its deadline is the default REQUEST_TIMEOUT_MS.
const requestTimeoutMs = num('REQUEST_TIMEOUT_MS', 30_000)
const heldBody = down('A (npm start)').length
  ? Promise.resolve({ closedByServer: false, ms: 0, text: '' })
  : raw(ports.PORT, 'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n{"user', { from: '127.0.0.43', deadlineMs: requestTimeoutMs + 5000 })

// --- 1 ----------------------------------------------------------------------------------------------------------
await finding(1, 'forgeable tokens', async () => {
  const problems = down('A (npm start)', 'B (Docker env)')
  if (!/JWT_SECRET/.test(refused) || refused === 'started and listened') problems.push(`Docker env without JWT_SECRET: ${refused}`)
  // Every constant in the repository that looks like a secret: the code's default, .env.example, compose's fallback.
  const constants = new Set()
  for (const m of readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8').matchAll(/SECRET\s*=\s*'([^']{16,})'/g)) constants.add(m[1])
  if (envExample.JWT_SECRET) constants.add(envExample.JWT_SECRET)
  for (const m of readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').matchAll(/JWT_SECRET:-([^}]+)\}/g)) constants.add(m[1])
  for (const constant of constants) {
    const res = await http(`${a}/users/demo`, { from: '127.0.0.10', headers: { authorization: `Bearer ${sign({ sub: 'demo' }, constant)}` } })
    if (res.status !== 401) problems.push(`repo constant ${constant.slice(0, 12)}… read demo: ${res.status}`)
  }
  const forged = [['no exp', { sub: 'demo' }], ['exp in 10 years', { sub: 'demo', exp: now() + 10 * 365 * 86_400 }],
    ['iat tomorrow', { sub: 'demo', iat: now() + 86_400, exp: now() + 90_000 }], ['sub ../x', { sub: '../x', exp: now() + 600 }]]
  for (const [what, payload] of forged) {
    const res = await http(`${b}/users/${encodeURIComponent(payload.sub)}`, { from: '127.0.0.11', headers: { authorization: `Bearer ${sign(payload, SECRET)}` } })
    if (res.status !== 401) problems.push(`token with ${what}: ${res.status}`)
  }
  return problems
})

// --- 2 ----------------------------------------------------------------------------------------------------------
await finding(2, 'sybil identities', async () => {
  const problems = down('A (npm start)', 'B (Docker env)')
  if (problems.length) return problems
  const signup = await http(`${a}/auth/login`, { from: '127.0.0.20', method: 'POST', body: { username: `load_test_probe_${Date.now()}`, password: 'any-password-1' } })
  // npm start may turn self-signup on for its loopback quickstart, and must say so at start (the issue's rule).
  if (signup.status === 200 && !A.stdout.some((line) => line.includes('STUB_SIGNUP=load_test'))) problems.push('npm start created a load_test_ user on first login without saying so at start')
  // 30 new identities from one address, 5 requests each, with RATE_LIMIT_MAX=5 and RATE_LIMIT_IP_MAX=50.
  const tokens = []
  const logins = await flood(30, 5, async (i) => {
    const res = await http(`${b}/auth/login`, { from: '127.0.0.21', method: 'POST', body: { username: `load_test_sybil_${Date.now()}_${i}`, password: 'pw-sybil-1' } })
    if (res.json?.token) tokens.push([res.json.userId, res.json.token])
    return res
  })
  const reads = await flood(tokens.length * 5, 5, (i) => http(`${b}/users/${tokens[i % tokens.length][0]}`, { from: '127.0.0.21', headers: { authorization: `Bearer ${tokens[i % tokens.length][1]}` } }))
  const limited = (logins[429] ?? 0) + (reads[429] ?? 0)
  if (limited === 0) problems.push(`30 logins + ${tokens.length * 5} reads from one address: 0 × 429 (logins ${JSON.stringify(logins)}, reads ${JSON.stringify(reads)})`)
  return problems
})

// --- 3 ----------------------------------------------------------------------------------------------------------
await finding(3, 'login counter reset', async () => {
  const problems = down('A (npm start)')
  if (problems.length) return problems
  const guess = (from, password) => http(`${a}/auth/login`, { from, method: 'POST', body: { username: 'demo', password } })
  for (let i = 0; i < 12; i++) guessesAnswered += (await guess('127.0.0.30', `wrong-${i}`)).status === 401 ? 1 : 0
  // 5 000 logins with other usernames from the same address, then demo again.
  const other = await flood(5000, 20, (i) => http(`${a}/auth/login`, { from: '127.0.0.30', method: 'POST', body: { username: `nobody_${i}`, password: 'x-password' } }))
  const again = await guess('127.0.0.30', 'wrong-after-flood')
  if (again.status !== 429) problems.push(`after 12 wrong demo guesses and 5 000 other logins (${JSON.stringify(other)}), a demo guess got ${again.status}`)
  // Across addresses: 4 more addresses, 10 guesses each (each within its own per-address limit).
  const across = await flood(40, 4, (i) => guess(`127.0.0.${31 + (i % 4)}`, `spread-${i}`))
  guessesAnswered += across[401] ?? 0
  if (!across[429]) problems.push(`40 demo guesses from 4 addresses: no 429 (${JSON.stringify(across)})`)
  return problems
})

// --- 4 ----------------------------------------------------------------------------------------------------------
await finding(4, 'slow and hoarding clients', async () => {
  const problems = down('A (npm start)')
  if (problems.length) return problems
  const cap = num('CONNECTIONS_PER_IP_MAX', 256)
  const sockets = []
  try {
    for (let i = 0; i < cap + 20; i++) {
      const entry = { closed: false, socket: connect({ host: '127.0.0.1', port: ports.PORT, localAddress: '127.0.0.40' }) }
      entry.socket.on('error', () => {})
      entry.socket.on('close', () => { entry.closed = true })
      sockets.push(entry)
    }
    await waitFor(() => sockets.filter((s) => s.closed).length >= 20, { timeoutMs: 3000 }).catch(() => {})
    // A socket still open may be one the server has not dealt with yet: one exchange on each tells.
    const open = sockets.filter((s) => !s.closed).length
    capFigure = `${open} of ${cap + 20} sockets from one address stayed open (cap ${cap})`
    if (open > cap) problems.push(capFigure)
    const other = await http(`${a}/health`, { from: '127.0.0.41' }).catch((err) => ({ status: err.code }))
    if (other.status !== 200) problems.push(`another address while the first holds its sockets: ${other.status}`)
  } finally {
    for (const s of sockets) s.socket.destroy()
  }
  // Partial login bodies count when their headers arrive: 30 held, then a complete login from that address.
  const partial = []
  for (let i = 0; i < 30; i++) {
    partial.push(raw(ports.PORT, 'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n{"u', { from: '127.0.0.42', deadlineMs: 2000 }))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  const after = await http(`${a}/auth/login`, { from: '127.0.0.42', method: 'POST', body: { username: 'demo', password: 'wrong-held' } })
  const early = (await Promise.all(partial)).filter((r) => statusOf(r.text) === 429).length
  if (process.env.PROBE_DEBUG) console.error('finding 4 partial logins:', after.status, early)
  if (after.status !== 429 && early === 0) problems.push(`30 held partial login bodies, then a login from that address: ${after.status} (held ones answered 429: ${early})`)
  const held = await heldBody
  if (!held.closedByServer || held.ms > requestTimeoutMs + 3000) problems.push(`a held login body was still open after ${held.ms} ms (REQUEST_TIMEOUT_MS ${requestTimeoutMs})`)
  return problems
})

// --- 5 ----------------------------------------------------------------------------------------------------------
await finding(5, 'TRUST_PROXY trusts the client', async () => {
  const problems = down('C (TRUST_PROXY=1)')
  const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'))
  for (const [name, service] of Object.entries(compose.services ?? {})) {
    const trust = Array.isArray(service.environment) ? service.environment.find((e) => e.startsWith('TRUST_PROXY='))?.split('=')[1] : service.environment?.TRUST_PROXY
    if (trust !== undefined && String(trust) === 'true') problems.push(`compose service ${name} sets TRUST_PROXY=true`)
  }
  if (problems.length) return problems
  // One hop trusted: the client is the right-most entry, whatever the client put on the left (RATE_LIMIT_MAX=3).
  const spoofed = []
  for (let i = 1; i <= 5; i++) spoofed.push((await http(`${c}/users/load_test_x`, { from: '127.0.0.50', headers: { 'x-forwarded-for': `203.0.113.${i}, 198.51.100.7` } })).status)
  if (!spoofed.includes(429)) problems.push(`5 requests, left-most X-Forwarded-For varied, right-most fixed: ${spoofed.join(',')} (no 429)`)
  for (const [what, value] of [['not-an-ip', (i) => `not-an-ip-${i}`], ['5 000 characters', (i) => `${i}${'x'.repeat(5000)}`]]) {
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await http(`${c}/users/load_test_x`, { from: `127.0.0.${51 + (what === 'not-an-ip' ? 0 : 1)}`, headers: { 'x-forwarded-for': value(i) } })).status)
    if (!statuses.some((s) => s === 429 || s === 400)) problems.push(`X-Forwarded-For ${what}, varied: ${statuses.join(',')} (each a new client)`)
  }
  return problems
})

// --- 6 ----------------------------------------------------------------------------------------------------------
await finding(6, 'one crafted request opens a breaker', async () => {
  const problems = down('B (Docker env)')
  if (problems.length) return problems
  // GET /orders/:id forwards the caller's id (x-user-id) for the owner check: a CR/LF there is refused by undici itself.
  const crafted = sign({ sub: 'load_test_a\r\nx-evil: 1', exp: now() + 600 }, SECRET)
  const statuses = []
  for (let i = 0; i < 5; i++) {
    statuses.push((await http(`${b}/orders/ord_00000000-0000-4000-8000-00000000000${i}`, { from: '127.0.0.60', headers: { authorization: `Bearer ${crafted}` } })).status)
  }
  const ready = await http(`${b}/health/ready`)
  const breaker = ready.json?.upstreams?.order?.breaker
  if (process.env.PROBE_DEBUG) console.error('finding 6 statuses:', statuses.join(','), breaker)
  if (breaker !== 'closed') problems.push(`after 5 crafted requests (${statuses.join(',')}), the order breaker is ${breaker ?? JSON.stringify(ready.json)}`)
  if (statuses.some((s) => s >= 500)) problems.push(`crafted requests answered ${statuses.join(',')} (want 4xx)`)
  return problems
})

// --- 7 ----------------------------------------------------------------------------------------------------------
await finding(7, 'stubs open to anyone', async () => {
  const problems = down('A (npm start)')
  if (problems.length) return problems
  // A deposit, not the issue's withdraw: an open stub answers it 200 whatever the balance (a withdraw may be 409).
  const deposit = await http(`http://127.0.0.1:${ports.USER_PORT}/users/demo/deposit`, { from: '127.0.0.70', method: 'POST', body: { amount: 1 } })
  if (deposit.status < 400) problems.push(`POST :${ports.USER_PORT}/users/demo/deposit without a credential: ${deposit.status}`)
  const metrics = await http(`http://127.0.0.1:${ports.USER_PORT}/metrics`, { from: '127.0.0.70' })
  if (metrics.status === 200) problems.push('the user stub\'s /metrics is open')
  const external = Object.values(networkInterfaces()).flat().filter((i) => i && !i.internal && i.family === 'IPv4').map((i) => i.address)
  for (const address of external.slice(0, 1)) {
    const reached = await new Promise((resolve) => {
      const socket = connect({ host: address, port: ports.USER_PORT })
      socket.on('connect', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (reached) problems.push(`the user stub answers on ${address}`)
  }
  return problems
})

// --- 8 ----------------------------------------------------------------------------------------------------------
const floodStarted = A.stdout.length
let floodRequests = 0
let denials = 0
await finding(8, 'log amplification', async () => {
  const problems = down('A (npm start)')
  if (problems.length) return problems
  const statuses = await flood(20_000, 32, () => http(`${a}/api/test-rate-limit`, { from: '127.0.0.80' }))
  denials = statuses[429] ?? 0
  floodRequests += 20_000
  if (denials < 19_000) problems.push(`the 20 000-request flood got only ${denials} × 429 (${JSON.stringify(statuses)})`)
  const limit = num('RATE_LIMIT_MAX', 1000)
  const unknown = await flood(limit + 10, 16, (i) => http(`${a}/no-such-path-${i}`, { from: '127.0.0.81' }))
  floodRequests += limit + 10
  if (!unknown[429]) problems.push(`${limit + 10} unknown paths with RATE_LIMIT_MAX=${limit}: no 429 (${JSON.stringify(unknown)})`)
  return problems
})

// --- 9 ----------------------------------------------------------------------------------------------------------
await finding(9, 'low: error answers, upstream size, /metrics and /health/ready trust', async () => {
  const problems = down('A (npm start)')
  if (problems.length) return problems
  const marker = 'probe-marker-'
  const cases = [
    [400, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: 1\r\n\r\n'],
    [408, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n'],
    [414, `GET /users/${marker}${'x'.repeat(300)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`],
    [417, 'POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 200-ok\r\ncontent-length: 2\r\n\r\n{}'],
    [431, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-filler: ${'a'.repeat(20_000)}\r\n\r\n`]
  ]
  const headersTimeoutMs = num('HEADERS_TIMEOUT_MS', 10_000)
  for (const [status, bytes] of cases) {
    const answer = await raw(ports.PORT, bytes, { from: '127.0.0.90', deadlineMs: headersTimeoutMs + 3000 })
    const got = statusOf(answer.text)
    const head = headOf(answer.text)
    const body = bodyOf(answer.text)
    const missing = Object.entries(SECURITY_HEADERS).filter(([k, v]) => head[k] !== v).map(([k]) => k)
    if (got !== status) problems.push(`${status} case answered ${got || 'nothing'}`)
    else if (missing.length || typeof body?.code !== 'string' || body?.error !== STATUS_CODES[status]) problems.push(`${status} without ${missing.length ? missing.join('/') : 'the JSON shape'}`)
    if (answer.text.includes(marker)) problems.push(`${status} echoes the path`)
  }
  const proxied = await http(`${a}/metrics`, { from: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } })
  if (proxied.status === 200) problems.push('/metrics served to a loopback proxy relaying 203.0.113.9')
  const ready = await http(`${a}/health/ready`, { from: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } })
  if (ready.json?.upstreams || ready.json?.redis) problems.push('/health/ready detail served to a relayed client')
  // The hostile upstream's 50 MB text/html must not be relayed (nor buffered) as a user's answer.
  if (startErrors['C (TRUST_PROXY=1)']) return [...problems, ...down('C (TRUST_PROXY=1)')]
  const login = await http(`${c}/auth/login`, { from: '127.0.0.91', method: 'POST', body: { username: 'demo', password: 'demo-password' } })
  if (login.json?.token) {
    const started = Date.now()
    const res = await http(`${c}/users/demo`, { from: '127.0.0.91', headers: { authorization: `Bearer ${login.json.token}` } }).catch((err) => ({ status: err.code, text: '' }))
    if (res.status === 200 || res.text.length > 1_000_000) problems.push(`50 MB text/html upstream answer relayed: ${res.status}, ${res.text.length} bytes in ${Date.now() - started} ms`)
  } else problems.push(`demo login through C: ${login.status}`)
  return problems
})

// --- finish: stop everything (A's audit log is flushed by its graceful stop), then finding 8's counts ------------
for (const agent of agents.values()) await agent.close()
await Promise.all([A.stop(), B.stop(), C.stop(), ...bStubs.map((s) => s.stop())])
if (process.env.PROBE_DEBUG) console.error('A exit:', A.child.exitCode, A.child.signalCode, A.stderr.slice(-500))
hostile.close()
if (!startErrors['A (npm start)']) {
  const r = results.get(8)
  const audit = (existsSync(auditPath) ? readFileSync(auditPath, 'utf8') : '').split('\n').flatMap((line) => { try { return [JSON.parse(line)] } catch { return [] } })
  const denialLines = audit.filter((e) => (e.type === 'rate_limit_exceeded' || e.type === 'rate_limit_exceeded_summary') && String(e.detail ?? '').includes('127.0.0.80'))
  const counted = denialLines.reduce((sum, e) => sum + (Number(e.count ?? e.denials ?? e.total) || 1), 0)
  auditFigure = `${denialLines.length} audit lines for ${denials} denials (they count ${counted})`
  if (denialLines.length > 100) r.problems.push(auditFigure)
  else if (counted !== denials) r.problems.push(`the audit lines count ${counted} denials, the flood saw ${denials}`)
  const accessLines = A.stdout.slice(floodStarted).filter((l) => l.startsWith('{') && l.includes('"reqId"')).length
  if (accessLines > floodRequests * 1.01) r.problems.push(`${accessLines} log lines for ${floodRequests} requests`)
}

process.exit(report() ? 1 : 0)
