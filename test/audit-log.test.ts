import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import metrics from '../plugins/metrics.js'
import auditLog from '../plugins/audit-log.js'
import { buildGateway } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { gatewayProcessFor, JWT_SECRET, stubsFor } from './helper.js'

const FIELDS = ['time', 'type', 'reqId', 'ip', 'userId', 'agentId', 'upstream', 'route', 'outcome', 'detail', 'count']
// Denials a flood repeats: the first of a key per interval has its own line, the rest are summed in `<type>_summary`.
const AGGREGATED = ['rate_limit_exceeded', 'quota_exceeded']

interface AuditLine { count: number, time: string, type: string, reqId: string | null, ip: string | null, userId: string | null, agentId: string | null, route: string | null, outcome: string, detail: string | null }

/** What a response implies for the audit log: the event type, or undefined for none. */
type Expectation = { type: string, route: string, outcome: string, userId?: string, agentId?: string } | undefined

function tempLog (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-audit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'nested', 'audit.log')
}

/** Reads the audit file: every line must parse, so a torn or interleaved write fails here. */
function readAudit (t: Test, path: string): AuditLine[] {
  const text = readFileSync(path, 'utf8')
  t.ok(text.length === 0 || text.endsWith('\n'), 'the audit file ends with a whole line')
  const broken: string[] = []
  const lines = text.split('\n').filter(Boolean).flatMap((line) => {
    try {
      return [JSON.parse(line) as AuditLine]
    } catch {
      broken.push(line.slice(0, 200))
      return []
    }
  })
  t.same(broken.slice(0, 3), [], `every line is JSON (${broken.length} are not)`)
  return lines
}

/** One audit line per expected event (same request id, type, route, outcome, subject), no line for anything else. */
function checkExactlyOnce (t: Test, lines: AuditLine[], expected: Map<string, NonNullable<Expectation>>, label: string, mayAlsoContain = new Set<string>()) {
  const byReqId = new Map<string, AuditLine[]>()
  for (const line of lines) {
    if (line.reqId === null) continue
    byReqId.set(line.reqId, [...byReqId.get(line.reqId) ?? [], line])
  }
  const missing = [...expected].filter(([id, e]) => !byReqId.has(id) && !AGGREGATED.includes(e.type)).map(([id]) => id)
  const duplicated = [...byReqId].filter(([, l]) => l.length > 1).map(([id]) => id)
  const stray = [...byReqId.keys()].filter((id) => !expected.has(id) && !mayAlsoContain.has(id))
  t.same(missing, [], `${label}: no event is missing`)
  t.same(duplicated, [], `${label}: no event is written twice`)
  t.same(stray, [], `${label}: no line without its event`)
  const wrong: string[] = []
  for (const [id, want] of expected) {
    const line = byReqId.get(id)?.[0]
    if (!line) continue
    const keys = Object.keys(line)
    if (!FIELDS.every((f) => keys.includes(f))) wrong.push(`${id}: fields ${keys.join(',')}`)
    if (line.type !== want.type || line.route !== want.route || line.outcome !== want.outcome) wrong.push(`${id}: ${line.type} ${line.route} ${line.outcome}, wanted ${want.type} ${want.route} ${want.outcome}`)
    if (want.userId !== undefined && line.userId !== want.userId) wrong.push(`${id}: userId ${line.userId}`)
    if (want.agentId !== undefined && line.agentId !== want.agentId) wrong.push(`${id}: agentId ${line.agentId}`)
    if (line.ip !== '127.0.0.1') wrong.push(`${id}: ip ${line.ip}`)
    if (Number.isNaN(Date.parse(line.time))) wrong.push(`${id}: time ${line.time}`)
    if (typeof line.detail !== 'string' || line.detail.length === 0 || line.detail.length > 300) {
      // login_success carries no detail; every refusal says why.
      if (line.type !== 'login_success') wrong.push(`${id}: detail ${line.detail}`)
    }
  }
  t.same(wrong.slice(0, 10), [], `${label}: every line has time, type, reqId, ip, userId/agentId, route, outcome and detail`)
  // Aggregated denials: each is on its own line or counted in a summary, so the counts add up to the denials.
  for (const type of AGGREGATED) {
    const want = [...expected.values()].filter((e) => e.type === type).length
    const got = lines.filter((l) => l.type === type || l.type === `${type}_summary`).reduce((a, l) => a + l.count, 0)
    if (mayAlsoContain.size === 0) t.equal(got, want, `${label}: the ${type} counts add up to the ${want} denials`)
    else t.ok(got >= want && got <= want + mayAlsoContain.size, `${label}: the ${type} counts (${got}) add up to the ${want} denials answered (+ at most the unanswered)`)
  }
}

/** The event mix: each kind's request and the event its answer implies. */
function eventMix (ctx: { user: string, other: string, password: string, wrongPassword: string, token: string, forged: string }) {
  const kinds = ['login_bad', 'login_ok', 'no_token', 'forged', 'forbidden', 'demo', 'quota', 'health'] as const
  type Kind = typeof kinds[number]
  function request (kind: Kind, n: number): { method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: unknown } {
    switch (kind) {
      case 'login_bad': return { method: 'POST', url: '/auth/login', headers: {}, body: { username: ctx.user, password: ctx.wrongPassword } }
      case 'login_ok': return { method: 'POST', url: '/auth/login', headers: {}, body: { username: ctx.other, password: ctx.password } }
      // The token in a query string must not reach the audit file either.
      case 'no_token': return { method: 'GET', url: `/users/${ctx.user}?access_token=${ctx.token}`, headers: {} }
      case 'forged': return { method: 'GET', url: `/users/${ctx.user}`, headers: { authorization: `Bearer ${ctx.forged}` } }
      case 'forbidden': return { method: 'POST', url: `/users/${ctx.other}/deposit`, headers: { authorization: `Bearer ${ctx.token}` }, body: { amount: 1 } }
      case 'demo': return { method: 'GET', url: '/api/test-rate-limit', headers: {} }
      case 'quota': return { method: 'POST', url: '/api/request', headers: {}, body: { agentId: `agent-${n % 3}`, tokens: 5 } }
      case 'health': return { method: 'GET', url: '/health', headers: {} }
    }
  }
  function expect (kind: Kind, n: number, status: number): Expectation {
    const limited = (route: string): Expectation => status === 429 ? { type: 'rate_limit_exceeded', route, outcome: 'denied' } : undefined
    switch (kind) {
      case 'login_bad': return status === 401 ? { type: 'login_failure', route: 'POST /auth/login', outcome: 'denied', userId: ctx.user } : limited('POST /auth/login')
      case 'login_ok': return status === 200 ? { type: 'login_success', route: 'POST /auth/login', outcome: 'success', userId: ctx.other } : limited('POST /auth/login')
      case 'no_token':
      case 'forged': return status === 401 ? { type: 'access_denied', route: 'GET /users/:id', outcome: 'denied' } : undefined
      case 'forbidden': return status === 403 ? { type: 'access_denied', route: 'POST /users/:id/deposit', outcome: 'denied', userId: ctx.user } : undefined
      case 'demo': return limited('GET /api/test-rate-limit')
      case 'quota': return status === 429 ? { type: 'quota_exceeded', route: 'POST /api/request', outcome: 'denied', agentId: `agent-${n % 3}` } : undefined
      case 'health': return undefined
    }
  }
  const expectedStatuses: Record<Kind, number[]> = {
    login_bad: [401, 429], login_ok: [200, 429], no_token: [401], forged: [401], forbidden: [403], demo: [200, 429], quota: [200, 429], health: [200]
  }
  return { kinds, request, expect, expectedStatuses }
}

const LIMITS = {
  RATE_LIMIT_MAX: '1000000',
  RATE_LIMIT_LOGIN_MAX: '40',
  RATE_LIMIT_LOGIN_WINDOW_MS: '600000',
  RATE_LIMIT_DEMO_MAX: '5',
  RATE_LIMIT_DEMO_WINDOW_MS: '600000',
  AGENT_QUOTA_CAPACITY: '50',
  AGENT_QUOTA_REFILL_PER_SECOND: '0.001',
  AGENT_AUTH: 'open', // /api/request without keys (the agents' own audit events: test/agents/)
  AGENT_QUOTA_MAX_PARALLEL: '1000' // 400 requests at once for 3 agents: the buckets decide, not the in-flight cap
}

async function secrets (gatewayUrlOrLogin: (username: string, password: string) => Promise<string>) {
  const password = `pw-${randomUUID()}`
  const wrongPassword = `wrong-${randomUUID()}`
  const user = 'load_test_audit_a'
  const other = 'load_test_audit_b'
  const token = await gatewayUrlOrLogin(user, password)
  await gatewayUrlOrLogin(other, password)
  // A well-formed token signed with another key: invalid, and a secret all the same.
  const forged = `${token.split('.').slice(0, 2).join('.')}.${Buffer.from(randomUUID()).toString('base64url')}`
  return { user, other, password, wrongPassword, token, forged }
}

function assertNoSecrets (t: Test, path: string, ctx: { password: string, wrongPassword: string, token: string, forged: string }) {
  const text = readFileSync(path, 'utf8')
  t.notOk(text.includes(ctx.password), 'the password never appears')
  t.notOk(text.includes(ctx.wrongPassword), 'a wrong password never appears')
  t.notOk(text.includes(ctx.token), 'the bearer token never appears')
  t.notOk(text.includes(ctx.forged.split('.')[2]), 'a forged token never appears')
  t.notOk(/eyJ[A-Za-z0-9_-]{10,}\./.test(text), 'nothing that looks like a JWT appears')
}

t.test('K security events at high concurrency → exactly K audit lines, each complete, no secrets', async (t) => {
  const stubs = await stubsFor(t, {}, ['auth', 'user'])
  const path = tempLog(t)
  const app = await buildGateway(loadConfig({ JWT_SECRET, ...stubs.gatewayEnv, ...LIMITS, AUDIT_LOG_PATH: path }), { logger: false })
  let closed = false
  t.teardown(() => closed ? undefined : app.close())
  await app.ready()

  const loginIds: string[] = []
  const ctx = await secrets(async (username, password) => {
    const reqId = `setup-${loginIds.length}`
    loginIds.push(reqId)
    const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-request-id': reqId }, payload: { username, password } })
    return res.json().token as string
  })
  const mix = eventMix(ctx)
  const expected = new Map<string, NonNullable<Expectation>>(loginIds.map((id, i) => [id, { type: 'login_success', route: 'POST /auth/login', outcome: 'success', userId: i === 0 ? ctx.user : ctx.other }]))

  // 1200 requests, in flight 400 at a time.
  const N = 1200
  const unexpected: string[] = []
  for (let start = 0; start < N; start += 400) {
    await Promise.all(Array.from({ length: 400 }, async (_, i) => {
      const n = start + i
      const kind = mix.kinds[n % mix.kinds.length]
      const reqId = `ev-${n}`
      const { method, url, headers, body } = mix.request(kind, n)
      const res = await app.inject({ method, url, headers: { ...headers, 'x-request-id': reqId }, payload: body as object | undefined })
      if (!mix.expectedStatuses[kind].includes(res.statusCode)) unexpected.push(`${kind} ${res.statusCode}`)
      const event = mix.expect(kind, n, res.statusCode)
      if (event) expected.set(reqId, event)
    }))
  }
  t.same(unexpected.slice(0, 5), [], 'every answer was one the mix expects')
  const types = new Set([...expected.values()].map((e) => e.type))
  t.same([...types].sort(), ['access_denied', 'login_failure', 'login_success', 'quota_exceeded', 'rate_limit_exceeded'], 'the mix produced every kind of request event')

  const counted = (await app.inject({ method: 'GET', url: '/metrics' })).body
  await app.close()
  closed = true

  const lines = readAudit(t, path)
  const summaries = lines.filter((l) => l.type.endsWith('_summary'))
  t.equal(lines.length - summaries.length + summaries.reduce((a, l) => a + l.count, 0), expected.size, `the lines stand for exactly K = ${expected.size} events (${lines.length} lines)`)
  checkExactlyOnce(t, lines, expected, 'in-process')
  for (const type of types) {
    const want = [...expected.values()].filter((e) => e.type === type).length
    t.match(counted, new RegExp(`gateway_audit_events_total\\{type="${type}"\\} ${want}\\n`), `gateway_audit_events_total{type="${type}"} is ${want} too`)
  }
  assertNoSecrets(t, path, ctx)
})

t.test('SIGTERM mid-load: every event the client got an answer for is in the file exactly once, exit code 0', async (t) => {
  const stubs = await stubsFor(t, {}, ['auth', 'user'])
  const path = tempLog(t)
  const gateway = await gatewayProcessFor(t, { ...stubs.gatewayEnv, ...LIMITS, AUDIT_LOG_PATH: path, LOG_LEVEL: 'warn' })
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

  const setupIds: string[] = []
  const ctx = await secrets(async (username, password) => {
    const reqId = `setup-${setupIds.length}`
    setupIds.push(reqId)
    const res = await post('/auth/login', { username, password }, { 'x-request-id': reqId })
    return ((await res.json()) as { token: string }).token
  })
  const mix = eventMix(ctx)
  const expected = new Map<string, NonNullable<Expectation>>(setupIds.map((id, i) => [id, { type: 'login_success', route: 'POST /auth/login', outcome: 'success', userId: i === 0 ? ctx.user : ctx.other }]))
  const sent = new Set<string>()
  const unanswered = new Set<string>()
  const unexpected: string[] = []
  let answered = 0
  let n = 0

  const exited = once(gateway.process, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  let signalled = false
  let down = false
  const SIGTERM_AFTER = 300
  // 16 clients keep the gateway busy; SIGTERM goes out while they are mid-flight, and they stop at the first refusal.
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (!down) {
      const i = n++
      const kind = mix.kinds[i % mix.kinds.length]
      const reqId = `ev-${i}`
      const { method, url, headers, body } = mix.request(kind, i)
      sent.add(reqId)
      let status: number
      try {
        const res = await fetch(`${gateway.url}${url}`, {
          method,
          headers: { ...headers, 'x-request-id': reqId, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body)
        })
        await res.arrayBuffer()
        status = res.status
      } catch {
        // Refused or reset while closing: no answer, so the event may or may not be in the file (at most once).
        unanswered.add(reqId)
        down = true
        return
      }
      answered++
      if (status === 503) {
        // Fastify's answer to a request that arrives on a kept-alive connection while closing; no event.
        continue
      }
      if (!mix.expectedStatuses[kind].includes(status)) unexpected.push(`${kind} ${status}`)
      const event = mix.expect(kind, i, status)
      if (event) expected.set(reqId, event)
      if (!signalled && answered >= SIGTERM_AFTER) {
        signalled = true
        gateway.process.kill('SIGTERM')
      }
    }
  }))
  const [code, signal] = await exited
  t.equal(code, 0, `the gateway exits 0 after SIGTERM (signal ${signal}; stderr: ${gateway.stderr().slice(-500)})`)
  t.ok(signalled, 'SIGTERM went out mid-load')
  t.ok(answered > SIGTERM_AFTER, `answers kept coming after SIGTERM (${answered} answered, ${sent.size} sent)`)
  t.same(unexpected.slice(0, 5), [], 'every answer was one the mix expects')

  const lines = readAudit(t, path)
  t.comment(`${expected.size} events answered, ${lines.length} lines, ${unanswered.size} requests without an answer`)
  checkExactlyOnce(t, lines, expected, 'after SIGTERM', unanswered)
  const events = lines.reduce((a, l) => a + l.count, 0)
  t.ok(events >= expected.size && events <= expected.size + unanswered.size, `the lines stand for no more events than answered or in flight (${events})`)
  assertNoSecrets(t, path, ctx)
})

t.test('the audit plugin alone on a bare Fastify: null for what does not apply, and an event after close is appended, not thrown', async (t) => {
  const path = tempLog(t)
  const app = Fastify({ logger: false })
  await app.register(metrics)
  await app.register(auditLog, { path })
  app.get('/thing/:id', async (request) => {
    app.audit({ type: 'access_denied', outcome: 'denied', userId: 'u1', detail: '403 test' }, request)
    return { ok: true }
  })
  await app.ready()
  await app.inject({ method: 'GET', url: '/thing/42?token=abc', headers: { 'x-request-id': 'r1' } })
  app.audit({ type: 'breaker_open', outcome: 'failure', upstream: 'user', detail: 'user circuit is open' })
  await app.close()
  // A timer that fires after close (a breaker, a Redis probe) must neither throw nor be lost.
  t.doesNotThrow(() => app.audit({ type: 'redis_recovered', outcome: 'recovered', detail: 'late' }))

  const lines = readAudit(t, path)
  t.equal(lines.length, 3)
  t.match(lines[0], { type: 'access_denied', reqId: lines[0].reqId, ip: '127.0.0.1', userId: 'u1', agentId: null, upstream: null, route: 'GET /thing/:id', outcome: 'denied', detail: '403 test' })
  t.match(lines[1], { type: 'breaker_open', reqId: null, ip: null, userId: null, agentId: null, upstream: 'user', route: null, outcome: 'failure' })
  t.match(lines[2], { type: 'redis_recovered', outcome: 'recovered', detail: 'late' })
  for (const line of lines) t.same(FIELDS.filter((f) => !(f in line)), [], `${line.type} has every field`)
})
