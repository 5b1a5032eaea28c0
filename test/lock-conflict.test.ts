import t, { type Test } from 'tap'
import { build, gatewayProcessFor, login, redisFor, sample, servedCount, setFault, stubsFor } from './helper.js'

// Concurrent writes for one user: exactly one takes the lock, the others get 503 at once; different users never
// contend. The user stub is slow (300 ms) so the operations really overlap.

const SLOW_MS = 300
const locked = (user: string) => ({ statusCode: 503, error: 'Service Unavailable', message: `Another operation for user ${user} is in progress; retry after the Retry-After delay`, code: 'GW_USER_LOCKED' })

interface Answer { status: number, retryAfter: string | null, body: unknown }

/** Checks a burst of answers for one user: one 200, the rest 503 GW_USER_LOCKED with Retry-After. */
function expectOneWinner (t: Test, answers: Answer[], user: string, winnerBody: unknown) {
  const winners = answers.filter((a) => a.status === 200)
  const losers = answers.filter((a) => a.status !== 200)
  t.equal(winners.length, 1, 'exactly one 200')
  t.same(winners[0]?.body, winnerBody)
  t.equal(losers.length, answers.length - 1, `${answers.length - 1} refused`)
  t.same(losers.map((a) => a.status), losers.map(() => 503), 'every refusal is 503')
  t.same(losers.map((a) => a.body), losers.map(() => locked(user)), 'every refusal is the GW_USER_LOCKED JSON')
  t.same(losers.map((a) => a.retryAfter), losers.map(() => '1'), 'every refusal carries Retry-After: 1')
}

// One Redis and one set of stub processes for the whole file (the subtests run one after another, with their own
// users); each subtest builds its own gateway(s). Where the stubs keep their data does not matter here.
const redis = await redisFor(t)
const stubs = await stubsFor(t)

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`10 concurrent deposits: one user → one 200 and nine 503; ten users → ten 200 (${mode}, one gateway)`, async (t) => {
    const redisEnv: Record<string, string> = mode === 'redis' ? { REDIS_URL: redis.url } : {}
    await setFault(stubs.user, 'ok')
    await setFault(stubs.order, 'ok')
    const app = await build(t, { ...stubs.gatewayEnv, ...redisEnv, RATE_LIMIT_LOGIN_MAX: '100' })
    const lockMetric = async (result: string) => sample((await app.inject({ method: 'GET', url: '/metrics' })).body, 'gateway_lock_acquisitions_total', { result })

    const user = `load_test_lock_${mode}`
    const auth = await login(app, user)
    const deposit = async (id: string, headers: Record<string, string>): Promise<Answer> => {
      const res = await app.inject({ method: 'POST', url: `/users/${id}/deposit`, headers, payload: { amount: 100 } })
      return { status: res.statusCode, retryAfter: (res.headers['retry-after'] as string | undefined) ?? null, body: res.json() }
    }

    await setFault(stubs.user, 'slow', SLOW_MS)
    const served = await servedCount(stubs.user)
    const answers = await Promise.all(Array.from({ length: 10 }, () => deposit(user, auth)))
    expectOneWinner(t, answers, user, { id: user, balance: 100 })
    t.equal(await servedCount(stubs.user) - served, 1, 'only the lock holder reached the user stub')
    await setFault(stubs.user, 'ok')
    t.same((await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })).json(), { id: user, balance: 100 }, 'the balance changed exactly once')
    t.equal(await lockMetric('acquired'), 1)
    t.equal(await lockMetric('conflict'), 9)

    // A deposit and an order for the same user share the lock too.
    await setFault(stubs.user, 'slow', SLOW_MS)
    await setFault(stubs.order, 'slow', SLOW_MS)
    const [dep, order] = await Promise.all([
      deposit(user, auth),
      app.inject({ method: 'POST', url: '/orders', headers: auth, payload: { userId: user, item: 'pen', quantity: 1, unitPrice: 100 } })
    ])
    t.equal([dep.status === 200, order.statusCode === 201].filter(Boolean).length, 1, 'deposit and order for one user: one goes through')
    t.equal([dep.status, order.statusCode].filter((s) => s === 503).length, 1, 'the other is 503')
    await setFault(stubs.order, 'ok')

    // Ten different users never contend.
    const users = Array.from({ length: 10 }, (_, i) => `load_test_lock_${mode}_${i}`)
    const auths = await Promise.all(users.map((u) => login(app, u)))
    const many = await Promise.all(users.map((u, i) => deposit(u, auths[i])))
    t.same(many.map((a) => a.status), users.map(() => 200), 'ten users: ten 200')
    t.same(many.map((a) => a.body), users.map((u) => ({ id: u, balance: 100 })))
    await setFault(stubs.user, 'ok')
    t.equal(await lockMetric('conflict'), 10, 'no new conflict (9 before, 1 for the deposit/order pair)')
    t.equal(await lockMetric('acquired'), 12)
  })
}

t.test('two gateway processes on one Redis share the per-user lock', async (t) => {
  await setFault(stubs.user, 'ok')
  const env = { ...stubs.gatewayEnv, REDIS_URL: redis.url, RATE_LIMIT_LOGIN_MAX: '100', LOG_LEVEL: 'error' }
  const gateways = await Promise.all([gatewayProcessFor(t, env), gatewayProcessFor(t, env)])

  async function logIn (username: string) {
    const res = await fetch(`${gateways[0].url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'pw-123' }) })
    t.equal(res.status, 200)
    return `Bearer ${(await res.json() as { token: string }).token}`
  }
  async function deposit (gatewayIndex: number, id: string, authorization: string): Promise<Answer> {
    const res = await fetch(`${gateways[gatewayIndex].url}/users/${id}/deposit`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 100 }) })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() }
  }
  async function lockMetric (result: string) {
    const texts = await Promise.all(gateways.map(async (g) => (await fetch(`${g.url}/metrics`)).text()))
    return texts.map((text) => sample(text, 'gateway_lock_acquisitions_total', { result }))
  }

  const user = 'load_test_lock_two_gateways'
  const authorization = await logIn(user)
  await setFault(stubs.user, 'slow', SLOW_MS)
  const served = await servedCount(stubs.user)
  // Alternate the two gateways: five requests each, all at once.
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => deposit(i % 2, user, authorization)))
  expectOneWinner(t, answers, user, { id: user, balance: 100 })
  t.equal(await servedCount(stubs.user) - served, 1, 'only the lock holder reached the user stub')
  const [acquired, conflicts] = [await lockMetric('acquired'), await lockMetric('conflict')]
  t.equal(acquired[0] + acquired[1], 1, `one acquisition across both gateways (${acquired.join(' + ')})`)
  t.equal(conflicts[0] + conflicts[1], 9, `nine conflicts across both gateways (${conflicts.join(' + ')})`)
  t.ok(conflicts[0] >= 4 && conflicts[1] >= 4, 'each gateway refused its own share: the lock is shared, not per process')

  await setFault(stubs.user, 'ok')
  const balance = await fetch(`${gateways[1].url}/users/${user}`, { headers: { authorization } })
  t.same(await balance.json(), { id: user, balance: 100 }, 'the balance changed exactly once')

  const users = Array.from({ length: 10 }, (_, i) => `load_test_lock_two_${i}`)
  const auths = await Promise.all(users.map(logIn))
  await setFault(stubs.user, 'slow', SLOW_MS)
  const many = await Promise.all(users.map((u, i) => deposit(i % 2, u, auths[i])))
  t.same(many.map((a) => a.status), users.map(() => 200), 'ten users over two gateways: ten 200')
})
