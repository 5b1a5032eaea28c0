import t from 'tap'
import { build, gatewayProcessFor, JWT_SECRET, login, servedCount, setFault, stubsFor, waitFor } from './helper.js'

// Upstream unreachable → 502, upstream too slow → 504, each for that upstream only: the others keep serving.
// One set of stubs for the file, in this order: the user stub is killed and started again, the order stub is slowed
// and healed, and the auth stub is killed last. Each subtest has its own gateway and user.
const stubs = await stubsFor(t)

const badGateway = (upstream: string) => ({ statusCode: 502, error: 'Bad Gateway', message: `Upstream ${upstream} is unreachable or failed; retry later`, code: 'GW_BAD_GATEWAY' })
const timedOut = (upstream: string) => ({ statusCode: 504, error: 'Gateway Timeout', message: `Upstream ${upstream} did not answer in time; retry later`, code: 'GW_UPSTREAM_TIMEOUT' })

t.test('user stub killed mid-test: 502 JSON for users while auth and orders keep answering 200 (gateway process)', async (t) => {
  // A high threshold keeps the breaker closed, so every call really goes to the dead upstream (502, not 503).
  const gateway = await gatewayProcessFor(t, { ...stubs.gatewayEnv, BREAKER_FAILURE_THRESHOLD: '1000', RATE_LIMIT_LOGIN_MAX: '1000', LOG_LEVEL: 'error' })
  const user = 'load_test_killed'
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${gateway.url}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    return { status: res.status, type: res.headers.get('content-type'), json: await res.json() }
  }
  const logIn = () => call('POST', '/auth/login', { username: user, password: 'pw-123' })
  const first = await logIn()
  t.equal(first.status, 200)
  const auth = { authorization: `Bearer ${first.json.token}` }
  t.equal((await call('POST', `/users/${user}/deposit`, { amount: 500 }, auth)).status, 200)

  async function round () {
    const [users, orders, login] = await Promise.all([call('GET', `/users/${user}`, undefined, auth), call('GET', `/users/${user}/orders`, undefined, auth), logIn()])
    return { users, orders, login }
  }
  for (let i = 0; i < 3; i++) {
    const r = await round()
    t.same([r.users.status, r.orders.status, r.login.status], [200, 200, 200], `before the kill, round ${i + 1}: all 200`)
  }

  // Killed while a request is inside it: that request gets 502 too.
  await setFault(stubs.user, 'slow', 5000)
  const served = await servedCount(stubs.user)
  const inFlight = call('GET', `/users/${user}`, undefined, auth)
  await waitFor(async () => await servedCount(stubs.user) > served, { what: 'the request to reach the user stub' })
  await stubs.user.kill()
  const cut = await inFlight
  t.equal(cut.status, 502, 'the in-flight request is cut with 502')
  t.same(cut.json, badGateway('user'))
  t.match(cut.type, /^application\/json/)

  for (let i = 0; i < 8; i++) {
    const r = await round()
    t.equal(r.users.status, 502, `after the kill, round ${i + 1}: users 502`)
    t.same(r.users.json, badGateway('user'))
    t.equal(r.orders.status, 200, 'orders still 200')
    t.same(r.orders.json, [])
    t.equal(r.login.status, 200, 'auth still 200')
  }
  const write = await call('POST', `/users/${user}/deposit`, { amount: 1 }, auth)
  t.same(write.json, badGateway('user'), 'writes to the dead upstream are 502 as well')
  t.same((await call('GET', '/health')).json, { status: 'ok' }, 'the gateway itself is alive')

  await stubs.user.start()
  // The fresh stub (memory mode) starts from nothing; what matters is that the gateway reaches it again.
  const back = await waitFor(async () => {
    const res = await call('GET', `/users/${user}`, undefined, auth)
    return res.status === 200 && res
  }, { what: 'users to answer 200 after the restart' })
  t.same(back.json, { id: user, balance: 0 })
})

t.test('slow upstream → 504 on time; the other upstreams answer meanwhile; the user lock is released', async (t) => {
  const timeoutMs = 300
  const app = await build(t, { ...stubs.gatewayEnv, ORDER_TIMEOUT_MS: String(timeoutMs), BREAKER_FAILURE_THRESHOLD: '1000' })
  const user = 'load_test_slow'
  const auth = await login(app, user)
  const order = { userId: user, item: 'lamp', quantity: 1, unitPrice: 990 }

  await setFault(stubs.order, 'slow', timeoutMs * 5)
  const started = performance.now()
  const [slow, users, loggedIn] = await Promise.all([
    app.inject({ method: 'GET', url: `/users/${user}/orders`, headers: auth }),
    app.inject({ method: 'GET', url: `/users/${user}`, headers: auth }),
    app.inject({ method: 'POST', url: '/auth/login', payload: { username: user, password: 'pw-123' } })
  ])
  const tookMs = performance.now() - started
  t.equal(slow.statusCode, 504)
  t.same(slow.json(), timedOut('order'))
  t.ok(tookMs >= timeoutMs * 0.9 && tookMs < timeoutMs * 2.5, `504 after ${tookMs.toFixed(0)} ms (timeout ${timeoutMs} ms, stub delay ${timeoutMs * 5} ms)`)
  t.equal(users.statusCode, 200, 'user upstream answered meanwhile')
  t.equal(loggedIn.statusCode, 200, 'auth upstream answered meanwhile')

  // A write that times out releases the user lock: the next one is not refused as locked.
  await setFault(stubs.order, 'hang')
  const hung = await app.inject({ method: 'POST', url: '/orders', headers: auth, payload: order })
  t.same(hung.json(), timedOut('order'))
  await setFault(stubs.order, 'ok')
  const created = await app.inject({ method: 'POST', url: '/orders', headers: auth, payload: order })
  t.equal(created.statusCode, 201, 'the lock taken by the timed-out write was released')
})

t.test('auth stub killed: login is 502, token-holding calls keep working (tokens are verified locally)', async (t) => {
  const app = await build(t, { ...stubs.gatewayEnv, JWT_SECRET })
  const user = 'load_test_auth_down'
  const auth = await login(app, user)
  await stubs.auth.kill()
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user, password: 'pw-123' } })
  t.equal(res.statusCode, 502)
  t.same(res.json(), badGateway('auth'))
  t.equal((await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 5 } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: `/users/${user}/orders`, headers: auth })).statusCode, 200)
})
