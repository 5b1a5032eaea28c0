import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Pool } from 'undici'
import { Redis } from 'ioredis'
import { JWT_SECRET, redisFor, setFault, stubsFor, waitFor } from './helper.js'
import { startGateway } from '../scripts/lib/stack.mjs'

// SIGTERM under load: what the gateway had read before the signal finishes normally, the per-user locks taken by
// in-flight writes are released (not left to expire), the audit log is complete on disk and the process exits 0.
const SLOW_MS = 1200
const LOCK_TTL_MS = 60_000 // far beyond the test: a missing lock key afterwards means released, not expired
const EXIT_BOUND_MS = SLOW_MS + 4000
const USERS = ['load_test_gs_a', 'load_test_gs_b', 'load_test_gs_c']

interface Outcome { id: string, sentAt: number, status?: number, code?: string, error?: string }

t.test('SIGTERM under load: accepted requests finish, locks released, audit flushed, exit 0', async (t) => {
  const redis = await redisFor(t)
  const stubs = await stubsFor(t, { REDIS_URL: redis.url }, ['auth', 'user'])
  const dir = mkdtempSync(join(tmpdir(), 'gw-graceful-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const auditPath = join(dir, 'audit.jsonl')
  const gateway = await startGateway({
    JWT_SECRET,
    REDIS_URL: redis.url,
    ...stubs.gatewayEnv,
    AUDIT_LOG_PATH: auditPath,
    AGENT_AUTH: 'open', // /api/quota without an agent key
    LOG_LEVEL: 'debug', // "incoming request" lines (debug: plugins/access-log.ts) tell which requests the gateway had read before the signal
    LOCK_TTL_MS: String(LOCK_TTL_MS),
    SHUTDOWN_TIMEOUT_MS: '10000',
    RATE_LIMIT_MAX: '100000'
  })
  t.teardown(() => gateway.stop('SIGKILL'))
  let log = ''
  gateway.process.stdout!.on('data', (chunk) => { log += chunk })
  const exited = once(gateway.process, 'exit') as Promise<[number | null, NodeJS.Signals | null]>

  const redisClient = new Redis(redis.url, { lazyConnect: true })
  await redisClient.connect()
  t.teardown(() => redisClient.quit())

  const pool = new Pool(gateway.url, { connections: 6, headersTimeout: 15_000, bodyTimeout: 15_000 })
  t.teardown(() => pool.destroy())
  const tokens: Record<string, string> = {}
  for (const user of USERS) {
    const res = await pool.request({ method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password: 'pw-graceful-1' }) })
    const body = await res.body.json() as { token: string }
    t.equal(res.statusCode, 200, `${user} logged in`)
    tokens[user] = body.token
  }

  // Background load on six keep-alive connections: quota reads (200) and token-less reads (401, an audit event each).
  let seq = 0
  const load = new AbortController()
  const outcomes: Outcome[] = []
  const background = Array.from({ length: 6 }, async (_, worker) => {
    while (!load.signal.aborted) {
      const id = `gs-${worker}-${++seq}`
      const unauthenticated = seq % 3 === 0
      const outcome: Outcome = { id, sentAt: Date.now() }
      outcomes.push(outcome)
      try {
        const res = await pool.request({ method: 'GET', path: unauthenticated ? `/users/${USERS[0]}` : '/api/quota/agent_gs', headers: { 'x-request-id': id } })
        const body = await res.body.json() as { code?: string }
        outcome.status = res.statusCode
        outcome.code = body.code
      } catch (err) {
        outcome.error = (err as { code?: string }).code ?? String(err)
        await new Promise((resolve) => setTimeout(resolve, 20)) // refused: the listener is gone; do not spin
      }
    }
  })
  await waitFor(() => outcomes.filter((o) => o.status !== undefined).length >= 60, { timeoutMs: 20_000, what: '60 background answers' })

  // One slow deposit per user, each on its own connection, each holding that user's lock when the signal comes.
  await setFault(stubs.user, 'slow', SLOW_MS)
  const deposits = USERS.map(async (user, i) => {
    const client = new Client(gateway.url, { headersTimeout: 15_000, bodyTimeout: 15_000 })
    try {
      const res = await client.request({
        method: 'POST',
        path: `/users/${user}/deposit`,
        body: JSON.stringify({ amount: 100 + i }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[user]}`, 'x-request-id': `gs-deposit-${i}` }
      })
      return { status: res.statusCode, connection: res.headers.connection, body: await res.body.json() }
    } catch (err) {
      return { error: (err as { code?: string }).code ?? String(err) }
    } finally {
      await client.close().catch(() => {})
    }
  })
  await waitFor(async () => (await redisClient.exists(...USERS.map((u) => `gw:lock:{${u}}`))) === USERS.length, { timeoutMs: 5000, what: 'all three locks held' })

  const signalledAt = Date.now()
  gateway.process.kill('SIGTERM')
  const [code, signal] = await Promise.race([
    exited,
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no exit within ${EXIT_BOUND_MS} ms`)), EXIT_BOUND_MS))
  ])
  const exitMs = Date.now() - signalledAt
  load.abort()
  await Promise.all(background)

  t.equal(code, 0, 'exit code 0')
  t.equal(signal, null, 'exited by itself, not killed')
  t.ok(exitMs < EXIT_BOUND_MS, `exited ${exitMs} ms after SIGTERM (bound ${EXIT_BOUND_MS} ms)`)
  t.ok(exitMs >= SLOW_MS - 400, `waited for the in-flight deposits (${exitMs} ms)`)

  // Every deposit in flight at the signal completed, and its connection was closed cleanly after the answer.
  const answers = await Promise.all(deposits)
  answers.forEach((answer, i) => {
    t.same(answer, { status: 200, connection: 'close', body: { id: USERS[i], balance: 100 + i } }, `in-flight deposit of ${USERS[i]} completed`)
  })
  for (const [i, user] of USERS.entries()) {
    t.equal(await redisClient.get(`stub:user:{${user}}:balance`), String(100 + i), `${user}'s balance holds the deposit once`)
  }
  const leftover = await redisClient.exists(...USERS.map((u) => `gw:lock:{${u}}`))
  t.equal(leftover, 0, 'every lock key is gone (released, TTL still ~60 s)')
  if (leftover) t.comment(log.split('\n').filter((l) => /lock|redis|clos/i.test(l)).join('\n'))

  // "Accepted before the signal": the gateway logged the request as incoming before it logged that it was closing.
  const lines = log.split('\n').filter(Boolean).map((line) => { try { return JSON.parse(line) as { msg?: string, reqId?: string } } catch { return {} } })
  const closingAt = lines.findIndex((l) => l.msg?.startsWith('closing'))
  t.ok(closingAt > 0, 'the gateway logged the start of its close')
  const accepted = new Set(lines.slice(0, closingAt).filter((l) => l.msg === 'incoming request').map((l) => l.reqId))
  const acceptedBackground = outcomes.filter((o) => accepted.has(o.id))
  const broken = acceptedBackground.filter((o) => o.status === undefined || o.status >= 500)
  t.ok(acceptedBackground.length >= 60, `${acceptedBackground.length} background requests accepted before the signal`)
  t.same(broken, [], '0 reset or 5xx among the requests accepted before the signal')
  if (broken.length) t.comment(`broken: ${JSON.stringify(broken)}; signal at ${signalledAt}`)
  const after = outcomes.filter((o) => !accepted.has(o.id))
  t.comment(`after the signal: ${after.filter((o) => o.status === 503).length} × 503 while closing, ${after.filter((o) => o.error === 'ECONNREFUSED').length} refused, ` +
    `${after.filter((o) => o.error && o.error !== 'ECONNREFUSED').length} reset before being read, exit after ${exitMs} ms`)

  // The audit log on disk holds one access_denied for each 401 the clients received, the last ones included.
  const audit = readFileSync(auditPath, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string, reqId?: string })
  const denied = new Map<string, number>()
  for (const event of audit) if (event.type === 'access_denied' && event.reqId) denied.set(event.reqId, (denied.get(event.reqId) ?? 0) + 1)
  const got401 = outcomes.filter((o) => o.status === 401)
  t.ok(got401.length >= 20, `${got401.length} × 401 answered`)
  t.same(got401.filter((o) => denied.get(o.id) !== 1).map((o) => o.id), [], 'each 401 appears exactly once in the audit log')
  t.ok(audit.some((e) => e.type === 'login_success'), 'earlier events are there too')
})
