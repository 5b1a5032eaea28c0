import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createTokenSigner } from '../src/lib/jwt.js'
import { build, JWT_SECRET } from './helper.js'

// What reaches the upstream is the proxy's contract: the request id travels, hop-by-hop headers and the client's
// credentials do not. A plain node:http server plays the user service so the test sees the headers as they arrive.
t.test('the upstream gets the request id and the user, never hop-by-hop headers or the client credentials', async (t) => {
  const received: IncomingHttpHeaders[] = []
  const upstream = createServer((req, res) => {
    received.push(req.headers)
    res.setHeader('content-type', 'application/json')
    res.setHeader('connection', 'keep-alive, x-upstream-hop')
    res.setHeader('x-upstream-hop', 'must not reach the client either')
    res.end(JSON.stringify({ id: 'load_test_hdr', balance: 0 }))
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => { upstream.close() })
  const app = await build(t, { USER_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` })
  const token = createTokenSigner(JWT_SECRET, 60)('load_test_hdr')

  const res = await app.inject({
    method: 'GET',
    url: '/users/load_test_hdr',
    headers: {
      authorization: `Bearer ${token}`,
      'x-request-id': 'req-from-client-42',
      connection: 'keep-alive, x-client-hop',
      'x-client-hop': 'named in Connection, so hop-by-hop',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      upgrade: 'websocket',
      'proxy-authorization': 'Basic c2VjcmV0',
      cookie: 'session=secret'
    }
  })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { id: 'load_test_hdr', balance: 0 })
  t.equal(res.headers['x-request-id'], 'req-from-client-42', 'the client sees its own request id back')
  t.equal(res.headers['x-upstream-hop'], undefined, 'a header the upstream named in Connection does not reach the client')

  t.equal(received.length, 1, 'one upstream call')
  const seen = received[0]
  t.equal(seen['x-request-id'], 'req-from-client-42', 'the request id travels upstream')
  t.equal(seen['x-user-id'], 'load_test_hdr', 'the verified user id travels upstream')
  for (const name of ['x-client-hop', 'keep-alive', 'te', 'upgrade', 'proxy-authorization', 'authorization', 'cookie']) {
    t.equal(seen[name], undefined, `${name} is not forwarded`)
  }
  t.notOk(String(seen.connection ?? '').includes('x-client-hop'), 'the client\'s Connection list is not forwarded')
})
