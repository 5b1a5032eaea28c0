import t, { type Test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createTokenSigner } from '../../src/lib/jwt.js'
import { build, JWT_SECRET } from '../helper.js'

// Security issue 12, finding 9: an upstream's answer was relayed whatever its content type and buffered whatever its
// size (50 MB). Now only JSON within UPSTREAM_MAX_BODY_BYTES is relayed; anything else is a 502 and the read stops.
const USER = 'load_test_limits'
const badGateway = { statusCode: 502, error: 'Bad Gateway', message: 'Upstream user is unreachable or failed; retry later', code: 'GW_BAD_GATEWAY' }
const FIFTY_MB = 50 * 1024 * 1024

type Answer = (res: ServerResponse) => void
/** Writes `total` bytes of a JSON string in 64 KiB chunks, minding backpressure; records how much left before close. */
function hugeJson (total: number, sent: { bytes: number }, withLength: boolean): Answer {
  return (res) => {
    res.setHeader('content-type', 'application/json')
    if (withLength) res.setHeader('content-length', total)
    const chunk = Buffer.alloc(64 * 1024, 'a')
    res.write('"'); sent.bytes = 1
    const pump = (): void => {
      while (sent.bytes < total - 1) {
        const piece = chunk.subarray(0, Math.min(chunk.length, total - 1 - sent.bytes))
        sent.bytes += piece.length
        if (!res.write(piece)) { res.once('drain', pump); return }
      }
      res.end('"'); sent.bytes += 1
    }
    res.on('close', () => res.removeAllListeners('drain'))
    pump()
  }
}

async function setup (t: Test, env: Record<string, string> = {}) {
  let answer: Answer = (res) => { res.end() }
  const upstream = createServer((_req, res) => { answer(res) })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  // Every refused answer is a breaker failure: a high threshold keeps the breaker out of these cases.
  const app = await build(t, { USER_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, BREAKER_FAILURE_THRESHOLD: '1000', ...env })
  const authorization = `Bearer ${createTokenSigner(JWT_SECRET, 60)(USER)}`
  return {
    app,
    answer: (next: Answer) => { answer = next },
    get: () => app.inject({ method: 'GET', url: `/users/${USER}`, headers: { authorization } })
  }
}

t.test('a 50 MB answer is refused with 502 and not read to the end (default limit, 1 MiB)', async (t) => {
  const { answer, get } = await setup(t)
  for (const withLength of [true, false]) {
    const sent = { bytes: 0 }
    answer(hugeJson(FIFTY_MB, sent, withLength))
    const res = await get()
    t.equal(res.statusCode, 502, `${withLength ? 'with' : 'without'} content-length: 502`)
    t.same(res.json(), badGateway)
    t.ok(sent.bytes < FIFTY_MB, `the upstream could not send it all (${sent.bytes} of ${FIFTY_MB} bytes written before the gateway hung up)`)
  }
})

t.test('an answer over UPSTREAM_MAX_BODY_BYTES is refused; one at the limit is relayed as is', async (t) => {
  const { answer, get } = await setup(t, { UPSTREAM_MAX_BODY_BYTES: '1024' })
  const atLimit = JSON.stringify({ id: USER, balance: 1, pad: 'x'.repeat(1024 - JSON.stringify({ id: USER, balance: 1, pad: '' }).length) })
  t.equal(Buffer.byteLength(atLimit), 1024)
  answer((res) => { res.setHeader('content-type', 'application/json; charset=utf-8'); res.end(atLimit) })
  const ok = await get()
  t.equal(ok.statusCode, 200, 'exactly the limit is relayed')
  t.equal(ok.body, atLimit)

  answer((res) => { res.setHeader('content-type', 'application/json'); res.end(atLimit + ' ') })
  const over = await get()
  t.equal(over.statusCode, 502, 'one byte over the limit is refused')
  t.same(over.json(), badGateway)
})

t.test('an answer that is not JSON is refused with 502, whatever its status', async (t) => {
  const { answer, get } = await setup(t)
  const cases: Array<[string, number, string | undefined]> = [
    ['text/html 200', 200, 'text/html'],
    ['text/html 404', 404, 'text/html; charset=utf-8'],
    ['text/plain 200', 200, 'text/plain'],
    ['no content type', 200, undefined],
    ['application/jsonx', 200, 'application/jsonx']
  ]
  for (const [name, status, type] of cases) {
    answer((res) => {
      res.statusCode = status
      if (type) res.setHeader('content-type', type)
      res.end('<html><script>alert(1)</script></html>')
    })
    const res = await get()
    t.equal(res.statusCode, 502, `${name}: 502`)
    t.same(res.json(), badGateway, `${name}: the JSON error, not the upstream's body`)
  }
  for (const type of ['application/json', 'application/problem+json', 'Application/JSON; charset=utf-8']) {
    answer((res) => { res.statusCode = 404; res.setHeader('content-type', type); res.end('{"statusCode":404}') })
    const res = await get()
    t.equal(res.statusCode, 404, `${type} is relayed`)
    t.equal(res.body, '{"statusCode":404}')
  }
})
