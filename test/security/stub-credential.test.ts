import t from 'tap'
import { join } from 'node:path'
import { LAB_STUB_CREDENTIAL, freePort, startStub } from '../helper.js'
import { LAB_STUB_ENV, ROOT, startNodeProcess } from '../../scripts/lib/stack.mjs'

// Security issue 12, finding 7: the stubs answer the gateway only. Before the fix `POST :3002/users/<id>/withdraw`
// worked without any credential, /metrics was open, and `npm start` bound the stubs to HOST (0.0.0.0 in a container).
t.test('every stub route but /health needs the gateway credential; stubs bind loopback whatever HOST says', async (t) => {
  const user = await startStub('user', { HOST: '0.0.0.0' })
  t.teardown(() => user.stop())
  // What the stub says it bound (startStub's url is always loopback): HOST is the gateway's, STUB_HOST the stubs'.
  const order = await startNodeProcess('order', join(ROOT, 'dist', 'src', 'services', 'order', 'main.js'), { ...LAB_STUB_ENV, HOST: '0.0.0.0', ORDER_PORT: String(await freePort()) })
  t.teardown(() => { order.process.kill() })
  t.equal(new URL(order.url).hostname, '127.0.0.1', 'HOST=0.0.0.0 leaves the stub on loopback')
  const refused = { statusCode: 401, error: 'Unauthorized', message: 'This service answers the gateway only: send its x-gateway-credential header', code: 'GW_STUB_CREDENTIAL' }
  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => {
    const res = await fetch(`${user.url}${path}`, { method, headers: { ...body ? { 'content-type': 'application/json' } : {}, ...headers }, body: body ? JSON.stringify(body) : undefined })
    return { status: res.status, body: await res.json().catch(() => null) }
  }
  for (const [method, path, body] of [['POST', '/users/load_test_v/withdraw', { amount: 1 }], ['POST', '/users/load_test_v/deposit', { amount: 1 }], ['GET', '/users/load_test_v'], ['GET', '/metrics']] as const) {
    t.same(await call(method, path, {}, body), { status: 401, body: refused }, `${method} ${path} without the credential: 401`)
    t.same(await call(method, path, { 'x-gateway-credential': 'x'.repeat(LAB_STUB_CREDENTIAL.length) }, body), { status: 401, body: refused }, `${method} ${path} with a wrong credential: 401`)
  }
  const withIt = await call('POST', '/users/load_test_v/deposit', { 'x-gateway-credential': LAB_STUB_CREDENTIAL }, { amount: 5 })
  t.same(withIt, { status: 200, body: { id: 'load_test_v', balance: 5 } }, 'the gateway\'s credential is served')
  t.equal((await call('GET', '/health')).status, 200, '/health stays open (liveness checks)')
  const { status } = await fetch(`${user.url}/metrics`, { headers: { 'x-gateway-credential': LAB_STUB_CREDENTIAL } })
  t.equal(status, 200, '/metrics with the credential')
})
