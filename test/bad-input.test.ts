import t from 'tap'
import { build, login, stubsFor } from './helper.js'

t.test('bad input gets a 4xx JSON error and changes no state', async (t) => {
  const stubs = await stubsFor(t)
  const app = await build(t, { ...stubs.gatewayEnv, BODY_LIMIT_BYTES: '1024' })
  const user = 'load_test_bad_input'
  const auth = await login(app, user)
  const deposit = (payload: string, contentType = 'application/json') =>
    app.inject({ method: 'POST', url: `/users/${user}/deposit`, headers: { ...auth, 'content-type': contentType }, payload })
  t.equal((await deposit('{"amount":1000}')).statusCode, 200)

  const cases: Array<[string, string, string?]> = [
    ['malformed JSON', '{"amount": 10'],
    ['amount as a string', '{"amount":"10"}'],
    ['negative amount', '{"amount":-5}'],
    ['zero amount', '{"amount":0}'],
    ['fractional amount', '{"amount":1.5}'],
    ['huge amount', '{"amount":1e20}'],
    ['1e309 (Infinity)', '{"amount":1e309}'],
    ['null amount', '{"amount":null}'],
    ['missing amount', '{}'],
    ['unknown field', '{"amount":5,"admin":true}'],
    ['array body', '[5]'],
    ['oversized body', JSON.stringify({ amount: 5, pad: 'x'.repeat(2000) })],
    ['wrong content type', 'amount=5', 'application/x-www-form-urlencoded'],
    ['text content type', '5', 'text/plain']
  ]
  for (const [name, payload, contentType] of cases) {
    const res = await deposit(payload, contentType)
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${name}: 4xx (got ${res.statusCode})`)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${name}: error shape`)
    t.equal(body.statusCode, res.statusCode, `${name}: statusCode in body`)
    t.type(body.code, 'string')
  }
  t.equal((await deposit(JSON.stringify({ amount: 5, pad: 'x'.repeat(2000) }))).json().code, 'FST_ERR_CTP_BODY_TOO_LARGE')
  t.equal((await deposit('{"amount":-5}')).json().code, 'GW_BAD_REQUEST')

  const badIds = ['..%2F..%2Fetc', 'a%00b', 'x'.repeat(65), '%E2%80%AEevil']
  for (const id of badIds) {
    const res = await app.inject({ method: 'GET', url: `/users/${id}`, headers: auth })
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `id ${id}: 4xx (got ${res.statusCode})`)
  }

  const balance = await app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })
  t.same(balance.json(), { id: user, balance: 1000 }, 'no refused request changed the balance')
  const orders = await app.inject({ method: 'GET', url: `/users/${user}/orders`, headers: auth })
  t.same(orders.json(), [], 'no order was created')
})
