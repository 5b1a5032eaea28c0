// Starts the real processes the tests, load tests, benchmarks and chaos runs need, on free loopback ports:
// redis-server, the three stubs and gateway processes. Shared by test/helper.ts and every script in scripts/.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const DIST = join(ROOT, 'dist', 'src')

// Listening ports come from below the kernel's ephemeral range: a port from that range can be taken by any outgoing
// connection on the machine while its server is down, and a stub or Redis restarted on it would meet EADDRINUSE.
function listenRange () {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low > 11_000) return [10_000, low - 1]
  } catch {}
  return [0, 0]
}
const [PORT_LOW, PORT_HIGH] = listenRange()

async function tryListen (port) {
  const server = createServer()
  server.listen(port, '127.0.0.1')
  const ok = await Promise.race([once(server, 'listening').then(() => true), once(server, 'error').then(() => false)])
  if (!ok) return undefined
  const chosen = server.address().port
  server.close()
  await once(server, 'close')
  return chosen
}

/** A free TCP port on 127.0.0.1, outside the ephemeral range when it is known (the tiny reuse race is acceptable). */
export async function freePort () {
  const tries = PORT_HIGH > 0 ? 100 : 0
  for (let attempt = 0; attempt < tries; attempt++) {
    const port = await tryListen(PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW + 1)))
    if (port) return port
  }
  return tryListen(0)
}

/** Polls `check` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor (check, { timeoutMs = 10_000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let lastError
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) { lastError = err }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`)
}

async function redisPing (port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'))
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.on('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
  })
}

/**
 * A real redis-server on a free port. `persistent: true` keeps an append-only file in its own temp dir, so a
 * SIGKILL + restart keeps the data (as in docker-compose). `kill()` and `start()` are for outage tests.
 */
export async function startRedis ({ port, persistent = false, extraArgs = [] } = {}) {
  port ??= await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'gw-redis-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no',
    '--appendonly', persistent ? 'yes' : 'no', '--appendfsync', 'always', '--loglevel', 'warning', ...extraArgs]
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    process: undefined,
    async start () {
      redis.process = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] })
      await waitFor(() => redisPing(port), { what: `redis-server on port ${port}` })
    },
    async kill (signal = 'SIGKILL') {
      const proc = redis.process
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill(signal)
      await once(proc, 'exit')
    },
    async stop () {
      await redis.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    }
  }
  await redis.start()
  return redis
}

/**
 * What a child process inherits. Under `tap --disable-coverage` (CI's Node 24 run) it leaves out tap's
 * process-tracking loader from NODE_OPTIONS: that loader doubles a gateway's or stub's start-up (about 1 s more CPU
 * each, and the suite starts hundreds) and records only what coverage needs. With coverage on it stays: the
 * gateway and stub processes count toward the coverage gate.
 */
function inheritedEnv () {
  const { NODE_OPTIONS, TAP_DISABLE_COVERAGE } = process.env
  if (TAP_DISABLE_COVERAGE !== '1' || !NODE_OPTIONS?.includes('@tapjs/processinfo')) return process.env
  return { ...process.env, NODE_OPTIONS: NODE_OPTIONS.split(/\s+/).filter((option) => !option.includes('@tapjs/processinfo')).join(' ') }
}

/** Spawns `node <script>` and resolves once it prints "<name> listening on <url>" (60 s: a busy 2-CPU machine took 5–8 s per stub). */
export async function startNodeProcess (name, script, env, { timeoutMs = 60_000, output = 'ignore', nodeArgs = [] } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...inheritedEnv(), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', output === 'inherit' ? 'inherit' : 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  // output 'capture': every byte of stdout and stderr from the first one kept, for tests that search the logs.
  const captured = []
  if (output === 'capture') for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk) => captured.push(chunk))
  const lines = createInterface({ input: child.stdout })
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in ${timeoutMs} ms: ${stderr}`)), timeoutMs)
    lines.on('line', (line) => {
      const match = new RegExp(`^${name} listening on (http://\\S+)`).exec(line)
      if (match) { clearTimeout(timer); resolve(match[1]) }
    })
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? signal}) before listening: ${stderr}`)) })
  })
  return { name, url, port: Number(new URL(url).port), process: child, stderr: () => stderr, output: () => Buffer.concat(captured).toString() }
}

async function stopProcess (child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill(signal)
  await once(child, 'exit')
}

/** Each stub's env prefix: it listens on <PREFIX>_PORT, and a gateway finds it at <PREFIX>_URL. */
const STUB_VAR = { auth: 'AUTH', user: 'USER', order: 'ORDER', model: 'MODEL' }

/**
 * The lab's gateway-to-stub credential: random per process that starts stacks (never a constant in the repository),
 * given to every stub and gateway started here unless the caller sets STUB_CREDENTIAL.
 */
export const LAB_STUB_CREDENTIAL = randomBytes(32).toString('base64url')
/** The lab's stub env: the credential, and self-signup of load_test_* users (tests, k6, bench, chaos, soak log them in). */
export const LAB_STUB_ENV = { STUB_CREDENTIAL: LAB_STUB_CREDENTIAL, STUB_SIGNUP: 'load_test' }

/** One stub process on a free port (or `port`); `restart()` brings it back on the same port. */
export async function startStub (name, env = {}, port) {
  env = { ...LAB_STUB_ENV, ...env }
  port ??= await freePort()
  const stub = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    process: undefined,
    async start () {
      const started = await startNodeProcess(name, join(DIST, 'services', name, 'main.js'), { ...env, [`${STUB_VAR[name]}_PORT`]: String(port) })
      stub.process = started.process
    },
    async kill (signal = 'SIGKILL') { await stopProcess(stub.process, signal) },
    async stop () { await stopProcess(stub.process) },
    async restart () { await stub.kill(); await stub.start() }
  }
  await stub.start()
  return stub
}

/** The stubs (all four unless `names` says which); `env` reaches all (REDIS_URL, STUB_FAULTS, JWT_SECRET, STUB_SIGNUP …). */
export async function startStubs (env = {}, names = Object.keys(STUB_VAR)) {
  const settled = await Promise.allSettled(names.map((name) => startStub(name, env)))
  const failed = settled.find((s) => s.status === 'rejected')
  if (failed) {
    // The stubs that did start would outlive the caller, whose teardown never learns of them.
    await Promise.all(settled.filter((s) => s.status === 'fulfilled').map((s) => s.value.stop()))
    throw failed.reason
  }
  const started = Object.fromEntries(settled.map((s) => [s.value.name, s.value]))
  return {
    ...started,
    /** Env that points a gateway at these stubs, with their credential. */
    gatewayEnv: {
      ...Object.fromEntries(names.map((name) => [`${STUB_VAR[name]}_URL`, started[name].url])),
      STUB_CREDENTIAL: env.STUB_CREDENTIAL ?? LAB_STUB_CREDENTIAL
    },
    async stop () { await Promise.all(Object.values(started).map((stub) => stub.stop())) }
  }
}

// As `npm start` runs it: a 1 GB heap limit keeps RSS under 150 MB under load (docs/PERFORMANCE.md, Memory).
export const GATEWAY_NODE_ARGS = ['--max-old-space-size=1024']

/** A gateway process (dist/src/server.js) on a free port. */
export async function startGateway (env = {}, { output, timeoutMs, script = join(DIST, 'server.js'), nodeArgs = [] } = {}) {
  const port = env.PORT ?? await freePort()
  // The lab drives the gateway from one loopback address with up to 1 000 k6 VUs: a lab-sized connection cap.
  const started = await startNodeProcess('gateway', script, { STUB_CREDENTIAL: LAB_STUB_CREDENTIAL, CONNECTIONS_PER_IP_MAX: '4096', ...env, PORT: String(port) }, { output, timeoutMs, nodeArgs: [...GATEWAY_NODE_ARGS, ...nodeArgs] })
  return { ...started, stop: (signal) => stopProcess(started.process, signal) }
}

/** Sets a stub's fault mode through its own admin endpoint (needs STUB_FAULTS=1). */
export async function setFault (stub, mode, delayMs) {
  const res = await fetch(`${stub.url}/__fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(delayMs === undefined ? { mode } : { mode, delayMs }) })
  if (res.status !== 200) throw new Error(`fault admin answered ${res.status}: ${await res.text()}`)
}

/** How many requests a stub has received since it started. */
export async function servedCount (stub) {
  const res = await fetch(`${stub.url}/__fault`)
  return (await res.json()).served
}

/**
 * SIGKILLs every tracked child still running when this script exits, is interrupted or breaks, so a chaos or soak
 * run never leaves processes behind. `track(() => stub.process)` takes a getter: a restarted process is followed.
 */
export function reapOnExit (name) {
  const getters = new Set()
  const killAll = () => {
    for (const get of getters) {
      const child = get()
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  }
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { console.error(`${name}: ${signal}, tearing down`); killAll(); process.exit(2) })
  return { track (get) { getters.add(get); return get }, killAll }
}
