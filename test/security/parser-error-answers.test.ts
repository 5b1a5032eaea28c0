// Finding 9 (error answers): what Node's parser, its timeouts, the router and the Expect check refuse (400, 408, 414,
// 417, 431) carries the security headers and the JSON shape, on an app built by buildGateway; the 414 does not echo
// the path. Before the fix these were Fastify's or Node's bodies without `code` or security headers, and the 414 said
// "'/users/<the decoded path>' is exceeding the max param length".
import t from 'tap'
import { build } from '../helper.js'
import { exchange, parse, SECURITY_HEADERS, securityHeadersOf } from './lib.js'

const MARKER = 'probe<script>'

t.test('400, 408, 414, 417 and 431 from below the routes: JSON shape and security headers', async (t) => {
  const app = await build(t, { REQUEST_TIMEOUT_MS: '500', HEADERS_TIMEOUT_MS: '300' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const cases: Array<[string, string, number, string]> = [
    ['a header name with a space (parser)', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: 1\r\n\r\n', 400, 'GW_BAD_REQUEST'],
    ['a path that is not valid percent-encoding (router)', 'GET /users/%E0%A4%A HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 400, 'GW_BAD_REQUEST'],
    ['headers that never end (timeout)', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n', 408, 'GW_REQUEST_TIMEOUT'],
    ['a 300-character path parameter (router)', `GET /users/${encodeURIComponent(MARKER)}${'x'.repeat(300)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 414, 'GW_URI_TOO_LONG'],
    ['Expect: 200-ok', 'POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 200-ok\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}', 417, 'GW_EXPECTATION_FAILED'],
    ['a 20 KB header (parser)', `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-filler: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'GW_HEADERS_TOO_LARGE']
  ]
  for (const [what, bytes, status, code] of cases) {
    const answer = await exchange(port, bytes, { deadlineMs: 5000 })
    const parsed = parse(answer.text)
    t.equal(parsed?.status, status, `${what}: ${status}`)
    const body = parsed?.body as Record<string, unknown> | undefined
    t.same(body && Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: the JSON error shape`)
    t.equal(body?.code, code, `${what}: code ${code}`)
    t.equal(body?.statusCode, status, `${what}: statusCode in the body`)
    t.match(parsed?.headers['content-type'], /^application\/json/, `${what}: JSON content type`)
    t.same(securityHeadersOf(parsed?.headers ?? {}), SECURITY_HEADERS, `${what}: the security headers`)
    t.notOk(answer.text.includes(MARKER) || answer.text.includes('xxxxxxxxxx'), `${what}: the path is not echoed`)
  }
})
