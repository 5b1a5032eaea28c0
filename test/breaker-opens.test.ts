import t from 'tap'
import type { Gateway } from '../src/app.js'
import { build, login, sample, servedCount, setFault, stubsFor } from './helper.js'

// Five failures to the user upstream open its breaker; while open the gateway answers 503 at once and never calls it.
// One set of stubs for the file: each subtest builds its own gateway (its own breakers) and user, and starts from
// the user stub answering normally; the counts it asserts are differences of the stub's served count.
const stubs = await stubsFor(t)

const USER_TIMEOUT_MS = 2000
const circuitOpen = { statusCode: 503, error: 'Service Unavailable', message: 'Upstream user is failing and its circuit is open; retry after the Retry-After delay', code: 'GW_CIRCUIT_OPEN' }
const badGateway = { statusCode: 502, error: 'Bad Gateway', message: 'Upstream user is unreachable or failed; retry later', code: 'GW_BAD_GATEWAY' }
const timedOut = { statusCode: 504, error: 'Gateway Timeout', message: 'Upstream user did not answer in time; retry later', code: 'GW_UPSTREAM_TIMEOUT' }

async function breakerOf (app: Gateway, upstream: string): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  return res.json().upstreams[upstream].breaker
}

t.test('5 failing calls open the user breaker; the next call is 503 at once and never reaches the stub', async (t) => {
  await setFault(stubs.user, 'ok')
  const app = await build(t, { ...stubs.gatewayEnv, USER_TIMEOUT_MS: String(USER_TIMEOUT_MS), BREAKER_FAILURE_THRESHOLD: '5', BREAKER_RESET_TIMEOUT_MS: '60000' })
  const user = 'load_test_breaker_opens'
  const auth = await login(app, user)
  const getUser = () => app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })

  // 4xx answers are the client's fault: ten 409s in a row leave the breaker closed.
  const servedBefore409 = await servedCount(stubs.user)
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ method: 'POST', url: `/users/${user}/withdraw`, headers: auth, payload: { amount: 100 } })
    t.equal(res.statusCode, 409, `withdraw ${i + 1} over the balance is 409`)
  }
  t.equal(await servedCount(stubs.user) - servedBefore409, 10, 'the ten 409s came from the stub')
  t.equal(await breakerOf(app, 'user'), 'closed', 'ten 409s do not open the breaker')

  await setFault(stubs.user, 'fail')
  for (let i = 1; i <= 5; i++) {
    const res = await getUser()
    t.equal(res.statusCode, 502, `failure ${i} is 502`)
    t.same(res.json(), badGateway)
    t.equal(await breakerOf(app, 'user'), i < 5 ? 'closed' : 'open', `after failure ${i} the breaker is ${i < 5 ? 'closed' : 'open'}`)
  }

  const servedAtOpen = await servedCount(stubs.user)
  const started = performance.now()
  const rejected = await getUser()
  const fastFailMs = performance.now() - started
  t.equal(rejected.statusCode, 503)
  t.same(rejected.json(), circuitOpen)
  t.match(rejected.headers['content-type'], /^application\/json/)
  t.ok(['59', '60'].includes(String(rejected.headers['retry-after'])), `Retry-After is the time left to the trial (got ${rejected.headers['retry-after']})`)
  t.ok(fastFailMs < USER_TIMEOUT_MS / 10, `open breaker answered in ${fastFailMs.toFixed(1)} ms (upstream timeout ${USER_TIMEOUT_MS} ms)`)
  t.comment(`fast-fail latency with the breaker open: ${fastFailMs.toFixed(1)} ms`)

  // Writes are refused the same way, and still none reaches the stub.
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 1 } })
    t.equal(res.statusCode, 503)
    t.same(res.json(), circuitOpen)
  }
  t.equal(await servedCount(stubs.user), servedAtOpen, 'no request reached the user stub while the breaker was open')

  // Other upstreams are untouched by the user breaker.
  const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user, password: 'pw-123' } })
  t.equal(again.statusCode, 200, 'auth upstream still 200')
  const order = await app.inject({ method: 'POST', url: '/orders', headers: auth, payload: { userId: user, item: 'pen', quantity: 1, unitPrice: 100 } })
  t.equal(order.statusCode, 201, 'order upstream still answers')
  const orders = await app.inject({ method: 'GET', url: `/users/${user}/orders`, headers: auth })
  t.equal(orders.statusCode, 200, 'order upstream still 200')
  t.equal(orders.json().length, 1)

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'degraded', redis: 'not_configured', upstreams: { auth: { breaker: 'closed' }, user: { breaker: 'open' }, order: { breaker: 'closed' }, model: { breaker: 'closed' } } })

  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(metrics, 'gateway_breaker_state', { upstream: 'user' }), 2, 'state gauge: user open')
  t.equal(sample(metrics, 'gateway_breaker_state', { upstream: 'auth' }), 0, 'state gauge: auth closed')
  t.equal(sample(metrics, 'gateway_breaker_transitions_total', { upstream: 'user', state: 'open' }), 1)
  t.equal(sample(metrics, 'gateway_upstream_request_duration_seconds_count', { upstream: 'user', outcome: 'circuit_open' }), 6)
})

t.test('timeouts count as failures: 504 each, then the breaker opens', async (t) => {
  const timeoutMs = 300
  await setFault(stubs.user, 'ok')
  const app = await build(t, { ...stubs.gatewayEnv, USER_TIMEOUT_MS: String(timeoutMs), BREAKER_FAILURE_THRESHOLD: '5', BREAKER_RESET_TIMEOUT_MS: '60000' })
  const user = 'load_test_breaker_timeout'
  const auth = await login(app, user)
  const getUser = () => app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })

  // Three slow answers (past the timeout) and two that never come: all five are 504 and all five count.
  await setFault(stubs.user, 'slow', timeoutMs * 4)
  for (let i = 1; i <= 5; i++) {
    if (i === 4) await setFault(stubs.user, 'hang')
    const started = performance.now()
    const res = await getUser()
    const tookMs = performance.now() - started
    t.equal(res.statusCode, 504, `call ${i} timed out`)
    t.same(res.json(), timedOut)
    t.ok(tookMs >= timeoutMs * 0.9 && tookMs < timeoutMs * 2.5, `call ${i} gave up after ${tookMs.toFixed(0)} ms (timeout ${timeoutMs} ms)`)
    t.equal(await breakerOf(app, 'user'), i < 5 ? 'closed' : 'open')
  }
  const served = await servedCount(stubs.user)
  const started = performance.now()
  const rejected = await getUser()
  const fastFailMs = performance.now() - started
  t.equal(rejected.statusCode, 503)
  t.same(rejected.json(), circuitOpen)
  t.ok(fastFailMs < timeoutMs / 3, `rejected in ${fastFailMs.toFixed(1)} ms, not after the ${timeoutMs} ms timeout`)
  t.equal(await servedCount(stubs.user), served, 'the rejected call never reached the stub')

  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(metrics, 'gateway_upstream_request_duration_seconds_count', { upstream: 'user', outcome: 'timeout' }), 5)
})

t.test('successes between failures: only consecutive failures open the breaker', async (t) => {
  await setFault(stubs.user, 'ok')
  const app = await build(t, { ...stubs.gatewayEnv, BREAKER_FAILURE_THRESHOLD: '5', BREAKER_RESET_TIMEOUT_MS: '60000' })
  const user = 'load_test_breaker_consecutive'
  const auth = await login(app, user)
  const getUser = () => app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })

  for (let round = 0; round < 3; round++) {
    await setFault(stubs.user, 'fail')
    for (let i = 0; i < 4; i++) t.equal((await getUser()).statusCode, 502)
    await setFault(stubs.user, 'ok')
    t.equal((await getUser()).statusCode, 200, 'a success resets the count')
  }
  t.equal(await breakerOf(app, 'user'), 'closed', '12 failures, never 5 in a row: still closed')
  await setFault(stubs.user, 'fail')
  for (let i = 0; i < 5; i++) t.equal((await getUser()).statusCode, 502)
  t.equal(await breakerOf(app, 'user'), 'open', '5 in a row open it')
})
