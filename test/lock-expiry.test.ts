import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Gateway } from '../src/app.js'
import { build, JWT_SECRET, LAB_STUB_CREDENTIAL, login, redisFor, sample, servedCount, setFault, startStub, stubsFor, waitFor } from './helper.js'

// A lock outlived by its holder expires; the next request may proceed, and fencing makes the stale holder's late
// write fail at the stub. Redis down fails closed. A client that goes away releases its lock.

const stale = (user: string) => ({ statusCode: 409, error: 'Conflict', message: `Write for user ${user} carries a fencing token older than the last accepted one; retry the operation`, code: 'GW_STALE_FENCING_TOKEN' })
const lockUnavailable = (user: string) => ({ statusCode: 503, error: 'Service Unavailable', message: `The lock store is unreachable, so the write for user ${user} was refused; retry later`, code: 'GW_LOCK_UNAVAILABLE' })

// One Redis and one set of (in-memory) stub processes for the file; subtests run one after another with their own users.
const redis = await redisFor(t)
const stubs = await stubsFor(t)

async function lockMetric (app: Gateway, result: string) {
  return sample((await app.inject({ method: 'GET', url: '/metrics' })).body, 'gateway_lock_acquisitions_total', { result })
}

function tempDir (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-lock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`lock held past LOCK_TTL_MS expires: the next write proceeds, the stale write is fenced off, the expiry is counted, logged and audited (${mode})`, async (t) => {
    const ttlMs = 300
    await setFault(stubs.user, 'ok')
    const auditPath = join(tempDir(t), 'audit.jsonl')
    const logLines: Array<Record<string, unknown>> = []
    const app = await build(t, { ...stubs.gatewayEnv, ...(mode === 'redis' ? { REDIS_URL: redis.url } : {}), LOCK_TTL_MS: String(ttlMs), AUDIT_LOG_PATH: auditPath },
      { logger: { level: 'warn', stream: { write: (line: string) => { logLines.push(JSON.parse(line)) } } } })
    const user = `load_test_expiry_${mode}`
    const auth = await login(app, user)
    const deposit = (amount: number) => app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount } })
    t.same((await deposit(1000)).json(), { id: user, balance: 1000 })

    // A: its request sits in the stub for 1.5 s, five times the lock's TTL.
    await setFault(stubs.user, 'slow', ttlMs * 5)
    const served = await servedCount(stubs.user)
    const slowStarted = performance.now()
    const slowWrite = deposit(100)
    await waitFor(async () => await servedCount(stubs.user) > served, { what: 'the slow write to reach the stub' })
    await setFault(stubs.user, 'ok') // only A is slow

    // B: refused while A's lock lives, let through once it has expired (long before A is done).
    const second = await waitFor(async () => {
      const res = await deposit(10)
      if (res.statusCode === 503 && res.json().code === 'GW_USER_LOCKED') return false
      return res
    }, { timeoutMs: ttlMs * 4, what: 'a second write to get the expired lock' })
    const secondAfterMs = performance.now() - slowStarted
    t.equal(second.statusCode, 200)
    t.same(second.json(), { id: user, balance: 1010 })
    t.ok(secondAfterMs >= ttlMs * 0.9 && secondAfterMs < ttlMs * 5, `second write went through ${secondAfterMs.toFixed(0)} ms after the first started (TTL ${ttlMs} ms, first one still running)`)
    t.ok(await lockMetric(app, 'conflict') >= 0)

    // A's late write carries the older fencing token: the stub refuses it, and the client learns so.
    const first = await slowWrite
    t.ok(performance.now() - slowStarted >= ttlMs * 5 * 0.9, 'the first write answered only after its slow upstream')
    t.equal(first.statusCode, 409)
    t.same(first.json(), stale(user))
    t.same((await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })).json(), { id: user, balance: 1010 }, 'only the fenced-in write changed the balance')

    t.equal(await lockMetric(app, 'expired'), 1, 'the expiry is counted')
    t.equal(await lockMetric(app, 'acquired'), 3)
    const logged = logLines.filter((line) => line.msg === 'lock expired before the operation finished')
    t.equal(logged.length, 1, 'the expiry is logged once')
    t.match(logged[0], { level: 40, userId: user, ttlMs })
    const audited = await waitFor(() => {
      const events = readFileSync(auditPath, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
      return events.find((e) => e.type === 'lock_expired')
    }, { timeoutMs: 3000, what: 'the lock_expired audit line' })
    t.match(audited, { type: 'lock_expired', outcome: 'failure', userId: user, detail: `held longer than ${ttlMs} ms`, route: 'POST /users/:id/deposit' })
  })
}

// The stubs answer the gateway's credential only (security issue 12, finding 7); this test stands in for the gateway.
const internal = { 'x-gateway-credential': LAB_STUB_CREDENTIAL }

t.test('the stubs refuse a write whose x-fencing-token is older than the last accepted one (memory and Redis stubs)', async (t) => {
  const redisStubEnv = { JWT_SECRET, STUB_FAULTS: '1', REDIS_URL: redis.url }
  const [redisUser, redisOrder] = await Promise.all([startStub('user', redisStubEnv), startStub('order', redisStubEnv)])
  t.teardown(() => Promise.all([redisUser.stop(), redisOrder.stop()]))

  for (const [mode, userStub, orderStub] of [['memory', stubs.user, stubs.order], ['redis', redisUser, redisOrder]] as const) {
    const user = `load_test_fence_${mode}`
    async function write (path: string, body: unknown, token?: string) {
      const res = await fetch(`${userStub.url}${path}`, { method: 'POST', headers: { ...internal, 'content-type': 'application/json', ...(token === undefined ? {} : { 'x-fencing-token': token }) }, body: JSON.stringify(body) })
      return { status: res.status, body: await res.json() }
    }
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, '5'), { status: 200, body: { id: user, balance: 10 } }, `${mode}: token 5 accepted`)
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, '7'), { status: 200, body: { id: user, balance: 20 } }, `${mode}: token 7 accepted`)
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, '6'), { status: 409, body: stale(user) }, `${mode}: token 6 after 7 is stale`)
    t.same(await write(`/users/${user}/withdraw`, { amount: 5 }, '1'), { status: 409, body: stale(user) }, `${mode}: a stale withdraw too`)
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, '7'), { status: 200, body: { id: user, balance: 30 } }, `${mode}: the same holder may write again`)
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, '1777000000000000'), { status: 200, body: { id: user, balance: 40 } }, `${mode}: a 16-digit token is fine`)
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, '1776999999999999'), { status: 409, body: stale(user) }, `${mode}: and one below it is stale`)
    t.same(await write(`/users/${user}/deposit`, { amount: 10 }, 'abc'), { status: 400, body: { statusCode: 400, error: 'Bad Request', message: 'x-fencing-token must be a positive integer', code: 'GW_BAD_REQUEST' } })
    const balance = await (await fetch(`${userStub.url}/users/${user}`, { headers: internal })).json()
    t.same(balance, { id: user, balance: 40 }, `${mode}: refused writes changed nothing`)

    const order = { userId: user, item: 'pen', quantity: 1, unitPrice: 100 }
    const create = async (token: string) => {
      const res = await fetch(`${orderStub.url}/orders`, { method: 'POST', headers: { ...internal, 'content-type': 'application/json', 'x-fencing-token': token }, body: JSON.stringify(order) })
      return { status: res.status, body: await res.json() }
    }
    t.equal((await create('5')).status, 201, `${mode}: order with token 5 created`)
    t.same(await create('4'), { status: 409, body: stale(user) }, `${mode}: order with token 4 is stale`)
    const listed = await (await fetch(`${orderStub.url}/users/${user}/orders`, { headers: internal })).json()
    t.equal(listed.length, 1, `${mode}: only the fenced-in order exists`)
  }
})

t.test('fencing tokens stay ahead of what the stubs accepted when the gateway restarts (embedded)', async (t) => {
  await setFault(stubs.user, 'ok')
  const user = 'load_test_fence_restart'
  const first = await buildGateway(t)
  const auth = await login(first, user)
  for (let i = 1; i <= 3; i++) t.equal((await first.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 1 } })).statusCode, 200)
  await first.close()
  // A fresh embedded gateway against the same, still running stubs: its writes must not look stale.
  const second = await buildGateway(t)
  const res = await second.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 1 } })
  t.equal(res.statusCode, 200, 'the restarted gateway can write')
  t.same(res.json(), { id: user, balance: 4 })

  async function buildGateway (t: Test) { return build(t, { ...stubs.gatewayEnv }) }
})

t.test('Redis down: lock acquisition fails closed (503 GW_LOCK_UNAVAILABLE), nothing is written; back up, writes resume', async (t) => {
  await setFault(stubs.user, 'ok')
  await setFault(stubs.order, 'ok')
  const ownRedis = await redisFor(t) // killed below; not persistent, so its fencing counters are lost on restart
  const app = await build(t, { ...stubs.gatewayEnv, REDIS_URL: ownRedis.url })
  const user = 'load_test_lock_redis_down'
  const auth = await login(app, user)
  // Two writes, so the stub's last accepted fencing number is above what a reset counter would start from.
  for (const balance of [250, 500]) {
    t.same((await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 250 } })).json(), { id: user, balance })
  }

  t.comment(`T kill ${Date.now()}`)
  await ownRedis.kill()
  t.comment(`T killed ${Date.now()}`)
  const servedUser = await servedCount(stubs.user)
  const servedOrder = await servedCount(stubs.order)
  const writes = [
    { method: 'POST' as const, url: `/users/${user}/deposit`, payload: { amount: 100 } },
    { method: 'POST' as const, url: `/users/${user}/withdraw`, payload: { amount: 100 } },
    { method: 'POST' as const, url: '/orders', payload: { userId: user, item: 'pen', quantity: 1, unitPrice: 100 } }
  ]
  for (const write of writes) {
    const res = await app.inject({ ...write, headers: auth })
    t.equal(res.statusCode, 503, `${write.url} refused`)
    t.same(res.json(), lockUnavailable(user))
    t.equal(res.headers['retry-after'], '1')
  }
  t.equal(await servedCount(stubs.user), servedUser, 'no write reached the user stub')
  t.equal(await servedCount(stubs.order), servedOrder, 'no write reached the order stub')
  t.same((await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })).json(), { id: user, balance: 500 }, 'reads need no lock and still work; the balance is unchanged')
  t.equal(await lockMetric(app, 'unavailable'), 3)

  t.comment(`T start ${Date.now()}`)
  await ownRedis.start()
  t.comment(`T started ${Date.now()}`)
  const resumed = await waitFor(async () => {
    const res = await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 100 } })
    return res.json().code !== 'GW_LOCK_UNAVAILABLE' && res
  }, { timeoutMs: 5000, what: 'the lock store to come back' })
  t.equal(resumed.statusCode, 200, 'a fresh Redis (fencing counter lost) still issues tokens the stub accepts')
  t.same(resumed.json(), { id: user, balance: 600 })
  t.comment(`T end ${Date.now()}`)
})

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`a client that goes away releases its lock at once (${mode})`, async (t) => {
    await setFault(stubs.user, 'ok')
    const ttlMs = 10_000 // far longer than the test: only the release can free the lock
    const app = await build(t, { ...stubs.gatewayEnv, ...(mode === 'redis' ? { REDIS_URL: redis.url } : {}), LOCK_TTL_MS: String(ttlMs) })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
    const user = `load_test_abort_${mode}`
    const auth = await login(app, user)

    await setFault(stubs.user, 'slow', 2000)
    const served = await servedCount(stubs.user)
    const client = new AbortController()
    const gone = fetch(`${url}/users/${user}/deposit`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 100 }), signal: client.signal })
      .then(() => 'answered', (err: Error) => err.name)
    await waitFor(async () => await servedCount(stubs.user) > served, { what: 'the write to reach the stub (lock held)' })
    await setFault(stubs.user, 'ok')
    const locked = await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 1 } })
    t.equal(locked.json().code, 'GW_USER_LOCKED', 'while the client waits, the user is locked')

    const abortedAt = performance.now()
    client.abort()
    t.equal(await gone, 'AbortError')
    const next = await waitFor(async () => {
      const res = await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 10 } })
      return res.statusCode !== 503 && res
    }, { timeoutMs: 3000, what: 'the lock to be released after the abort' })
    const releasedMs = performance.now() - abortedAt
    t.equal(next.statusCode, 200, 'a new request for the same user gets 200')
    t.ok(releasedMs < ttlMs / 5, `released ${releasedMs.toFixed(0)} ms after the abort, not by the ${ttlMs} ms TTL`)
    t.equal(await lockMetric(app, 'expired'), 0, 'released, not expired')
  })
}
