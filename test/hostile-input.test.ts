// The hostile-input corpus (test/fixtures/hostile-corpus.ts) against real gateway processes (dist/, run `npm run
// build` first) in Redis and in embedded mode, each request as raw bytes over its own socket: every one gets a 4xx
// JSON error, none a 5xx, a non-JSON answer or a crash, and none changes a balance, an order or an agent bucket
// (read from the stubs and Redis, not from the gateway). Then no secret is in the gateway's logs or audit file.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import { connect } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { buildCorpus, rawRequest, toBytes, type HostileRequest } from './fixtures/hostile-corpus.js'
import Fastify from 'fastify'
import { installErrorHandlers, refuseAmbiguousHeaders } from '../src/error-handler.js'
import { SECURITY_HEADERS } from '../src/lib/security-headers.js'
import { build, gatewayProcessFor, JWT_SECRET, LAB_STUB_CREDENTIAL, redisFor, stubsFor, type Stubs } from './helper.js'
import { buildUserService } from '../src/services/user/app.js'

const METRICS_TOKEN = 'metrics-token-0123456789-abcdef'
// A machine shared with load tests: generous, and only a bound (a request answers as soon as it can).
const ANSWER_DEADLINE_MS = 20_000
const ERROR_KEYS = ['code', 'error', 'message', 'statusCode']

interface RawAnswer { bytes: Buffer, timedOut: boolean, socketError?: string }

/** Writes `bytes` on a fresh socket and reads until the server closes it (every request says Connection: close). */
function sendRaw (port: number, bytes: Buffer): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let socketError: string | undefined
    const socket = connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => { socket.destroy(); finish(true) }, ANSWER_DEADLINE_MS)
    let done = false
    const finish = (timedOut: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ bytes: Buffer.concat(chunks), timedOut, socketError })
    }
    socket.on('data', (chunk) => chunks.push(chunk))
    // A server that answers early (413, 431) and closes may reset the rest of a big write: the answer is what counts.
    socket.on('error', (err: NodeJS.ErrnoException) => { socketError = err.code ?? err.message })
    socket.on('close', () => finish(false))
    socket.write(bytes, () => {})
  })
}

interface ParsedAnswer { status: number, headers: Map<string, string[]>, body: string, trailing: Buffer }

/** Parses one HTTP/1.1 response (Content-Length, chunked or close-delimited); what follows it is `trailing`. */
function parseAnswer (bytes: Buffer): ParsedAnswer | string {
  // An interim 100 Continue (the request said Expect: 100-continue) comes before the answer.
  while (/^HTTP\/1\.[01] 1\d\d /.test(bytes.subarray(0, 13).toString('latin1'))) bytes = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4)
  const headEnd = bytes.indexOf('\r\n\r\n')
  if (headEnd < 0) return bytes.length === 0 ? 'no answer at all (connection closed without a byte)' : `no complete head: ${JSON.stringify(bytes.subarray(0, 80).toString('latin1'))}`
  const [statusLine, ...lines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3}) /.exec(statusLine + ' ')
  if (!match) return `not an HTTP status line: ${JSON.stringify(statusLine.slice(0, 80))}`
  const headers = new Map<string, string[]>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    headers.set(name, [...headers.get(name) ?? [], line.slice(colon + 1).trim()])
  }
  let rest = bytes.subarray(headEnd + 4)
  let body: Buffer
  if (headers.get('transfer-encoding')?.[0] === 'chunked') {
    const parts: Buffer[] = []
    for (;;) {
      const lineEnd = rest.indexOf('\r\n')
      const size = parseInt(rest.subarray(0, lineEnd).toString(), 16)
      if (lineEnd < 0 || Number.isNaN(size)) return 'broken chunked body'
      if (size === 0) { rest = rest.subarray(rest.indexOf('\r\n\r\n') + 4); break }
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      rest = rest.subarray(lineEnd + 4 + size)
    }
    body = Buffer.concat(parts)
  } else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length')![0])
    if (rest.length < length) return `body cut short: ${rest.length} of ${length} bytes`
    body = rest.subarray(0, length)
    rest = rest.subarray(length)
  } else {
    body = rest
    rest = Buffer.alloc(0)
  }
  return { status: Number(match[1]), headers, body: body.toString(), trailing: rest }
}

/** Everything wrong with the answer to one corpus entry; empty when it is a proper 4xx JSON error. */
function problemsOf (request: HostileRequest, answer: RawAnswer): { problems: string[], summary: string } {
  if (answer.timedOut) return { problems: [`no answer within ${ANSWER_DEADLINE_MS} ms`], summary: 'timeout' }
  const parsed = parseAnswer(answer.bytes)
  if (typeof parsed === 'string') return { problems: [parsed + (answer.socketError ? ` (socket ${answer.socketError})` : '')], summary: 'unparsable' }
  const problems: string[] = []
  const { status, headers } = parsed
  if (status >= 500) problems.push(`5xx: ${status} ${parsed.body.slice(0, 200)}`)
  else if (status < 400) problems.push(`not refused: ${status} ${parsed.body.slice(0, 200)}`)
  if (request.expect !== undefined && status !== request.expect) problems.push(`expected ${request.expect}, got ${status}`)
  if (!/^application\/json\b/.test(headers.get('content-type')?.[0] ?? '')) problems.push(`content-type ${JSON.stringify(headers.get('content-type'))}`)
  let body: Record<string, unknown> | undefined
  try {
    body = JSON.parse(parsed.body)
  } catch {
    problems.push(`body is not JSON: ${JSON.stringify(parsed.body.slice(0, 120))}`)
  }
  if (body !== undefined) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) problems.push(`body is not an object: ${parsed.body.slice(0, 120)}`)
    else {
      if (JSON.stringify(Object.keys(body).sort()) !== JSON.stringify(ERROR_KEYS)) problems.push(`error keys ${JSON.stringify(Object.keys(body))}`)
      if (body.statusCode !== status) problems.push(`body statusCode ${String(body.statusCode)} vs HTTP ${status}`)
      if (body.error !== STATUS_CODES[status]) problems.push(`body error ${JSON.stringify(body.error)} vs ${STATUS_CODES[status]}`)
      if (typeof body.message !== 'string' || body.message.length === 0) problems.push('empty or non-string message')
      if (typeof body.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(body.code)) problems.push(`code ${JSON.stringify(body.code)}`)
    }
  }
  // Every answer, the parser's and the router's included, carries the security headers (plugins/headers.ts).
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (headers.get(name)?.[0] !== value) problems.push(`${name}: ${JSON.stringify(headers.get(name))}`)
  if (request.mustNotEcho !== undefined && answer.bytes.toString('latin1').includes(request.mustNotEcho)) problems.push(`the answer echoes ${request.mustNotEcho}`)
  // Header injection must never come back as a header, and one request gets one answer (no smuggled second one).
  if (headers.has('set-cookie')) problems.push(`set-cookie in the answer: ${headers.get('set-cookie')!.join(' | ')}`)
  if (parsed.trailing.length > 0) problems.push(`bytes after the answer: ${JSON.stringify(parsed.trailing.subarray(0, 80).toString('latin1'))}`)
  return { problems, summary: `${status} ${String(body?.code)}` }
}

/** Every key in Redis but the rate-limit counters (which refused requests move, by design), with its value. */
async function redisState (url: string): Promise<Record<string, unknown>> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    const state: Record<string, unknown> = {}
    for (const key of (await redis.keys('*')).sort()) {
      if (key.startsWith('gw:rl:')) continue
      const type = await redis.type(key)
      state[key] = type === 'string'
        ? await redis.get(key)
        : type === 'hash'
          ? await redis.hgetall(key)
          : type === 'list'
            ? await redis.lrange(key, 0, -1)
            : type === 'set'
              ? (await redis.smembers(key)).sort()
              : type === 'zset'
                ? await redis.zrange(key, '0', '-1', 'WITHSCORES')
                : `<${type}>`
    }
    return state
  } finally {
    redis.disconnect()
  }
}

async function json (url: string, init: RequestInit = {}) {
  const res = await fetch(url, init)
  return { status: res.status, body: await res.json() as any }
}

interface Mode { name: string, redisUrl?: string, stubs: Stubs }
// The stubs answer the gateway's credential only.
const asGateway = { headers: { 'x-gateway-credential': LAB_STUB_CREDENTIAL } }

/** The corpus against one gateway process; every assertion message names its corpus entry. */
async function runCorpus (t: Test, mode: Mode) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-hostile-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const auditPath = join(dir, 'audit.jsonl')
  const redisEnv: Record<string, string> = mode.redisUrl ? { REDIS_URL: mode.redisUrl, REDIS_COMMAND_TIMEOUT_MS: '5000' } : {}
  const gateway = await gatewayProcessFor(t, {
    ...mode.stubs.gatewayEnv,
    ...redisEnv,
    // The most verbose level the gateway logs at, so a secret in any log line is seen.
    LOG_LEVEL: 'trace',
    AUDIT_LOG_PATH: auditPath,
    METRICS_TOKEN,
    // Small enough that the slow-client entries (held bodies, slowloris) get their 408 quickly.
    REQUEST_TIMEOUT_MS: '3000',
    HEADERS_TIMEOUT_MS: '1500',
    // Limits out of the way: a 429 would hide the answer the corpus is about.
    RATE_LIMIT_MAX: '100000',
    RATE_LIMIT_LOGIN_MAX: '100000',
    // A bucket that does not visibly refill during the run, so "no token spent" is an exact comparison.
    AGENT_QUOTA_REFILL_PER_SECOND: '0.001'
  }, { output: 'capture' })

  // Two users with money and an order each, and an agent with a part-spent bucket: the state nothing may change.
  const login = async (username: string, password: string) => {
    const res = await json(`${gateway.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
    t.equal(res.status, 200, `login of ${username}`)
    return res.body.token as string
  }
  const suffix = randomUUID().slice(0, 8)
  const alicePassword = `alice-pw-${randomUUID()}`
  const bobPassword = `bob-pw-${randomUUID()}`
  const alice = { id: `load_test_alice_${suffix}`, password: alicePassword, token: '' }
  const bob = { id: `load_test_bob_${suffix}`, token: '', orderId: '' }
  alice.token = await login(alice.id, alicePassword)
  bob.token = await login(bob.id, bobPassword)
  const agentId = `agent_${suffix}`
  const post = (path: string, token: string | undefined, body: unknown) => json(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...token ? { authorization: `Bearer ${token}` } : {} },
    body: JSON.stringify(body)
  })
  t.equal((await post(`/users/${alice.id}/deposit`, alice.token, { amount: 10_000 })).status, 200)
  t.equal((await post(`/users/${bob.id}/deposit`, bob.token, { amount: 5_000 })).status, 200)
  t.equal((await post('/orders', alice.token, { userId: alice.id, item: 'pen', quantity: 2, unitPrice: 150 })).status, 201)
  const bobOrder = await post('/orders', bob.token, { userId: bob.id, item: 'ink', quantity: 1, unitPrice: 900 })
  t.equal(bobOrder.status, 201)
  bob.orderId = bobOrder.body.orderId
  t.equal((await post('/api/request', undefined, { agentId, tokens: 7 })).status, 200)

  // The ground truth: the stubs' own answers (no gateway in between), the agent bucket, and Redis itself.
  const groundTruth = async () => ({
    balances: await Promise.all([alice.id, bob.id].map(async (id) => (await json(`${mode.stubs.user.url}/users/${id}`, asGateway)).body)),
    orders: await Promise.all([alice.id, bob.id].map(async (id) => (await json(`${mode.stubs.order.url}/users/${id}/orders`, asGateway)).body)),
    agentRemaining: (await json(`${gateway.url}/api/quota/${agentId}`)).body.remaining,
    redis: mode.redisUrl ? await redisState(mode.redisUrl) : null
  })
  const before = await groundTruth()
  t.same(before.balances, [{ id: alice.id, balance: 10_000 }, { id: bob.id, balance: 5_000 }], 'the set-up balances')
  t.equal(before.agentRemaining, 93, 'the set-up bucket')
  if (before.redis) {
    const keys = Object.keys(before.redis)
    t.ok([alice.id, bob.id, agentId].every((id) => keys.some((key) => key.includes(`{${id}}`))), 'Redis holds the users\' and the agent\'s state (the comparison is not vacuous)')
  }

  const corpus = buildCorpus({ alice, bob, agentId, jwtSecret: JWT_SECRET })
  t.ok(corpus.length >= 200, `the corpus has ${corpus.length} requests`)
  const names = corpus.map((request) => request.name)
  t.same(names.filter((name, i) => names.indexOf(name) !== i), [], 'every corpus entry has its own name, so a failure names one request')
  const started = Date.now()
  const statuses = new Map<string, number>()
  /** Checks one answer; false once the gateway has exited. */
  const check = (request: HostileRequest, answer: RawAnswer) => {
    const { problems, summary } = problemsOf(request, answer)
    statuses.set(summary, (statuses.get(summary) ?? 0) + 1)
    t.same(problems, [], `${mode.name}: corpus entry "${request.name}" → ${summary}`)
    // A crash shows at the first request that caused it, not at the end.
    if (gateway.process.exitCode === null && gateway.process.signalCode === null) return true
    t.fail(`${mode.name}: the gateway exited (${gateway.process.exitCode ?? gateway.process.signalCode}) after corpus entry "${request.name}": ${gateway.stderr()}`)
    return false
  }
  // The slow clients (the 408 entries) wait out the gateway's header and request timeouts: their sockets are held
  // open from the start while the other entries go one at a time, instead of adding those waits one after another.
  const slow = corpus.filter((request) => request.expect === 408)
  const slowAnswers = slow.map((request) => sendRaw(gateway.port, toBytes(request)))
  for (const request of corpus.filter((entry) => entry.expect !== 408)) {
    if (!check(request, await sendRaw(gateway.port, toBytes(request)))) return
  }
  for (const [i, request] of slow.entries()) {
    if (!check(request, await slowAnswers[i])) return
  }
  t.comment(`${mode.name}: ${corpus.length} requests in ${Date.now() - started} ms; answers: ${[...statuses].sort().map(([k, n]) => `${k} ×${n}`).join(', ')}`)

  t.same(await groundTruth(), before, `${mode.name}: no balance, order, agent bucket or Redis key changed`)
  t.equal((await json(`${gateway.url}/health`)).status, 200, 'the gateway still serves')

  // Logs and audit complete: a graceful stop flushes both. The exit code says whether anything went wrong on the way.
  await gateway.stop('SIGTERM')
  t.equal(gateway.process.exitCode, 0, 'the gateway exits 0 after the corpus')
  const logs = gateway.output()
  const audit = readFileSync(auditPath, 'utf8')
  t.ok(logs.includes('request refused') && audit.includes('access_denied'), 'the logs and the audit file saw the refusals (the secret check is not vacuous)')
  const secrets: Array<[string, string]> = [
    ['alice\'s password', alicePassword], ['bob\'s password', bobPassword], ['alice\'s token', alice.token], ['bob\'s token', bob.token],
    ['alice\'s token signature', alice.token.split('.')[2]], ['alice\'s Basic credentials', Buffer.from(`${alice.id}:${alicePassword}`).toString('base64')],
    ['the JWT secret', JWT_SECRET], ['the metrics token', METRICS_TOKEN]
  ]
  for (const [what, secret] of secrets) {
    t.notOk(logs.includes(secret), `${mode.name}: ${what} is not in the gateway's logs`)
    t.notOk(audit.includes(secret), `${mode.name}: ${what} is not in the audit log`)
  }
  const errors = logs.split('\n').filter((line) => /"level":(50|60)/.test(line))
  t.same(errors, [], `${mode.name}: no error or fatal log line`)
}

// Redis mode's stubs (faults on) serve the Redis corpus and the fault admin's bind check; embedded mode has its own.
const redis = await redisFor(t)
const redisStubs = await stubsFor(t, { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '5000' })

t.test('Redis mode: every hostile request gets a 4xx JSON error and changes nothing', async (t) => {
  await runCorpus(t, { name: 'redis', redisUrl: redis.url, stubs: redisStubs })
})

t.test('embedded mode, stubs without faults: the same corpus; /__fault does not exist', async (t) => {
  const stubs = await stubsFor(t, { STUB_FAULTS: '0' })
  // First, so the corpus run after them (its set-up and ground truth) shows that no POST set a fault.
  for (const stub of [stubs.auth, stubs.user, stubs.order]) {
    for (const method of ['GET', 'POST']) {
      const body = method === 'POST' ? '{"mode":"fail"}' : undefined
      const answer = await sendRaw(stub.port, rawRequest(method, '/__fault', body ? [['content-type', 'application/json'], ['content-length', String(body.length)]] : [], body))
      const parsed = parseAnswer(answer.bytes)
      t.same(typeof parsed === 'string' ? parsed : { status: parsed.status, body: JSON.parse(parsed.body) },
        { status: 404, body: { statusCode: 404, error: 'Not Found', message: `No route ${method} /__fault`, code: 'GW_NOT_FOUND' } },
        `${stub.name} stub without STUB_FAULTS: ${method} /__fault is a 404 JSON error`)
    }
  }
  await runCorpus(t, { name: 'embedded', stubs })
})

t.test('stub fault admin: bound to loopback, and refused to a non-loopback peer', async (t) => {
  const stubs = redisStubs
  // Bound to 127.0.0.1: the machine's other addresses have nothing on the stubs' ports.
  const external = Object.values(networkInterfaces()).flat().filter((i) => i && !i.internal && i.family === 'IPv4').map((i) => i!.address)
  for (const address of external) {
    for (const stub of [stubs.auth, stubs.user, stubs.order]) {
      const refused = await new Promise<string>((resolve) => {
        const socket = connect({ host: address, port: stub.port })
        socket.on('connect', () => { socket.destroy(); resolve('connected') })
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
      })
      t.equal(refused, 'ECONNREFUSED', `${stub.name} stub is not reachable on ${address}`)
    }
  }
  if (external.length === 0) t.comment('no non-loopback IPv4 address on this machine; the bind check had nothing to try')

  // A remote peer (light-my-request sets the socket address the check reads; the suite never binds off loopback).
  const app = await buildUserService({}, { faults: true, logLevel: 'silent', credential: LAB_STUB_CREDENTIAL })
  t.teardown(() => app.close())
  const forbidden = { statusCode: 403, error: 'Forbidden', message: 'Not allowed: fault admin answers loopback clients only', code: 'GW_FORBIDDEN' }
  const remote = '203.0.113.9'
  const set = await app.inject({ method: 'POST', url: '/__fault', remoteAddress: remote, headers: { 'x-forwarded-for': '127.0.0.1' }, payload: { mode: 'fail' } })
  t.same({ status: set.statusCode, body: set.json() }, { status: 403, body: forbidden }, 'POST /__fault from a remote peer is refused, X-Forwarded-For or not')
  const read = await app.inject({ method: 'GET', url: '/__fault', remoteAddress: remote })
  t.same({ status: read.statusCode, body: read.json() }, { status: 403, body: forbidden }, 'GET /__fault from a remote peer is refused')
  const head = await app.inject({ method: 'HEAD', url: '/__fault', remoteAddress: remote })
  t.equal(head.statusCode, 403, 'HEAD /__fault from a remote peer is refused too')
  const local = await app.inject({ method: 'GET', url: '/__fault', remoteAddress: '127.0.0.1' })
  t.same(local.json(), { mode: 'ok', delayMs: 0, served: 0 }, 'the refused POST set no fault and was not counted as served')
})

t.test('/metrics: what metrics-exact does not cover (HEAD, odd paths, a query token, a trusted proxy header)', async (t) => {
  const app = await build(t, { METRICS_TOKEN, TRUST_PROXY: '1' })
  const remote = '203.0.113.7'
  const refused = { statusCode: 403, error: 'Forbidden', message: 'Not allowed: /metrics is served to loopback clients or with the METRICS_TOKEN bearer token', code: 'GW_FORBIDDEN' }
  const asRemote = (method: 'GET' | 'HEAD', url: string, headers: Record<string, string> = {}) => app.inject({ method, url, remoteAddress: remote, headers })

  const trusted = await asRemote('GET', '/metrics', { 'x-forwarded-for': '127.0.0.1' })
  t.same({ status: trusted.statusCode, body: trusted.json() }, { status: 403, body: refused }, 'with TRUST_PROXY, X-Forwarded-For: 127.0.0.1 still does not make a remote peer local')
  const head = await asRemote('HEAD', '/metrics')
  t.equal(head.statusCode, 403, 'HEAD /metrics from a remote peer is refused')
  t.equal(head.body, '', 'and carries no metrics')
  for (const query of [`token=${METRICS_TOKEN}`, `access_token=${METRICS_TOKEN}`, `authorization=Bearer%20${METRICS_TOKEN}`]) {
    const res = await asRemote('GET', `/metrics?${query}`)
    t.same({ status: res.statusCode, body: res.json() }, { status: 403, body: refused }, `the token in ?${query.split('=')[0]}= is not accepted`)
  }
  for (const path of ['/metrics/', '//metrics', '/METRICS', '/%6Detrics', '/metrics%00', '/metrics;', '/users/../metrics', '/metrics/..']) {
    const res = await asRemote('GET', path)
    t.ok(res.statusCode === 403 || res.statusCode === 404, `${path} from a remote peer: 403 or 404 (got ${res.statusCode})`)
    t.notOk(res.body.includes('gateway_'), `${path} from a remote peer carries no metrics`)
  }
  const notTheToken: Array<[string, string]> = [['lower-case bearer', `bearer ${METRICS_TOKEN}`], ['one character short', `Bearer ${METRICS_TOKEN.slice(0, -1)}`],
    ['one character more', `Bearer ${METRICS_TOKEN}x`], ['Basic with the token as password', `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}`],
    ['a JWT-looking token', 'Bearer a.b.c']]
  for (const [what, header] of notTheToken) {
    const res = await asRemote('GET', '/metrics', { authorization: header })
    t.same({ status: res.statusCode, body: res.json() }, { status: 403, body: refused }, `authorization with ${what} is refused`)
  }
})

t.test('refuseAmbiguousHeaders on a bare Fastify(): one Host (HTTP/1.1) and at most one Authorization', async (t) => {
  const app = Fastify()
  installErrorHandlers(app)
  app.addHook('onRequest', refuseAmbiguousHeaders)
  app.get('/', async (request) => ({ authorization: request.headers.authorization ?? null }))
  t.teardown(() => app.close())
  const refused = (message: string) => ({ statusCode: 400, error: 'Bad Request', message, code: 'GW_BAD_REQUEST' })
  // An array value is sent as repeated header lines (rawHeaders), as Node's parser would see them.
  const repeated = (name: string, values: string[]): Record<string, string[]> => ({ [name]: values })
  const two = await app.inject({ url: '/', headers: repeated('authorization', ['Bearer a', 'Bearer b']) })
  t.same({ status: two.statusCode, body: two.json() }, { status: 400, body: refused('Send one Authorization header') }, 'two Authorization headers')
  const hosts = await app.inject({ url: '/', headers: repeated('host', ['a.example', 'b.example']) })
  t.same({ status: hosts.statusCode, body: hosts.json() }, { status: 400, body: refused('An HTTP/1.1 request needs exactly one Host header') }, 'two Host headers')
  const one = await app.inject({ url: '/', headers: { authorization: 'Bearer a' } })
  t.same({ status: one.statusCode, body: one.json() }, { status: 200, body: { authorization: 'Bearer a' } }, 'one of each passes')
})
