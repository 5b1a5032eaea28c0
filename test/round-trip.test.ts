import t from 'tap'
import { build, login, redisFor, stubsFor } from './helper.js'

// One set of in-memory stubs for the file (the embedded round trip and the error answers, each with its own users);
// the Redis round trip starts its own, which keep their truth in Redis.
const memoryStubs = await stubsFor(t)

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`login → deposit → withdraw → order round trip (${mode})`, async (t) => {
    const redis = mode === 'redis' ? await redisFor(t) : undefined
    const redisEnv: Record<string, string> = redis ? { REDIS_URL: redis.url } : {}
    const stubs = redis ? await stubsFor(t, redisEnv) : memoryStubs
    const app = await build(t, { ...stubs.gatewayEnv, ...redisEnv })
    const user = `load_test_rt_${mode}`
    const auth = await login(app, user)

    const start = await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })
    t.same(start.json(), { id: user, balance: 0 })

    const deposit = await app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: auth, payload: { amount: 1500 } })
    t.equal(deposit.statusCode, 200)
    t.same(deposit.json(), { id: user, balance: 1500 })

    const withdraw = await app.inject({ method: 'POST', url: `/users/${user}/withdraw`, headers: auth, payload: { amount: 400 } })
    t.same(withdraw.json(), { id: user, balance: 1100 })

    const overdraw = await app.inject({ method: 'POST', url: `/users/${user}/withdraw`, headers: auth, payload: { amount: 5000 } })
    t.equal(overdraw.statusCode, 409)
    t.same(overdraw.json(), { statusCode: 409, error: 'Conflict', message: `Balance of user ${user} is lower than the amount`, code: 'GW_INSUFFICIENT_FUNDS' })

    const created = await app.inject({ method: 'POST', url: '/orders', headers: auth, payload: { userId: user, item: 'book', quantity: 2, unitPrice: 750 } })
    t.equal(created.statusCode, 201)
    const order = created.json()
    t.match(order.orderId, /^ord_[0-9a-f-]{36}$/)
    t.match(order, { userId: user, item: 'book', quantity: 2, unitPrice: 750, total: 1500 })

    const fetched = await app.inject({ method: 'GET', url: `/orders/${order.orderId}`, headers: auth })
    t.same(fetched.json(), order)
    const listed = await app.inject({ method: 'GET', url: `/users/${user}/orders`, headers: auth })
    t.same(listed.json(), [order])

    const end = await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })
    t.same(end.json(), { id: user, balance: 1100 }, 'only the acknowledged operations changed the balance')

    if (redis) {
      // The stubs keep their truth in Redis, so it survives a stub restart.
      await stubs.user.restart()
      const after = await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })
      t.same(after.json(), { id: user, balance: 1100 }, 'balance survives a user-stub restart')
    }
  })
}

t.test('401, 403 and 404 answers are JSON errors with codes', async (t) => {
  const app = await build(t, memoryStubs.gatewayEnv)
  const alice = await login(app, 'load_test_alice')
  const bob = await login(app, 'load_test_bob')
  const { order } = { order: (await app.inject({ method: 'POST', url: '/orders', headers: bob, payload: { userId: 'load_test_bob', item: 'pen', quantity: 1, unitPrice: 100 } })).json() }

  const noToken = await app.inject({ method: 'GET', url: '/users/load_test_alice' })
  t.same(noToken.json(), { statusCode: 401, error: 'Unauthorized', message: 'Authentication required: send "Authorization: Bearer <token>" from POST /auth/login', code: 'GW_UNAUTHORIZED' })

  const forged = await app.inject({ method: 'GET', url: '/users/load_test_alice', headers: { authorization: `${alice.authorization.slice(0, -4)}AAAA` } })
  t.same(forged.json(), { statusCode: 401, error: 'Unauthorized', message: 'Authentication required: the token is invalid or expired; log in again', code: 'GW_UNAUTHORIZED' })

  const notBearer = await app.inject({ method: 'GET', url: '/users/load_test_alice', headers: { authorization: 'Basic abc' } })
  t.equal(notBearer.statusCode, 401)

  const otherUser = await app.inject({ method: 'POST', url: '/users/load_test_bob/deposit', headers: alice, payload: { amount: 1 } })
  t.same(otherUser.json(), { statusCode: 403, error: 'Forbidden', message: 'Not allowed: user load_test_alice may not act on user load_test_bob', code: 'GW_FORBIDDEN' })

  const otherOrder = await app.inject({ method: 'GET', url: `/orders/${order.orderId}`, headers: alice })
  t.equal(otherOrder.statusCode, 403)
  t.equal(otherOrder.json().code, 'GW_FORBIDDEN')

  const orderForOther = await app.inject({ method: 'POST', url: '/orders', headers: alice, payload: { userId: 'load_test_bob', item: 'pen', quantity: 1, unitPrice: 100 } })
  t.equal(orderForOther.statusCode, 403)

  const unknownOrder = await app.inject({ method: 'GET', url: '/orders/ord_00000000-0000-0000-0000-000000000000', headers: alice })
  t.same(unknownOrder.json(), { statusCode: 404, error: 'Not Found', message: 'order ord_00000000-0000-0000-0000-000000000000 not found', code: 'GW_NOT_FOUND' })

  const unknownRoute = await app.inject({ method: 'GET', url: '/nowhere' })
  t.same(unknownRoute.json(), { statusCode: 404, error: 'Not Found', message: 'No route GET /nowhere', code: 'GW_NOT_FOUND' })

  const wrongPassword = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'load_test_alice', password: 'not-it' } })
  t.same(wrongPassword.json(), { statusCode: 401, error: 'Unauthorized', message: 'Unknown user or wrong password', code: 'GW_INVALID_CREDENTIALS' })
  const unknownUser = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'mallory', password: 'x' } })
  t.equal(unknownUser.statusCode, 401, 'only load_test_ users are created on first login')

  const bobBalance = await app.inject({ method: 'GET', url: '/users/load_test_bob', headers: bob })
  t.same(bobBalance.json(), { id: 'load_test_bob', balance: 0 }, 'refused requests changed nothing')
})
