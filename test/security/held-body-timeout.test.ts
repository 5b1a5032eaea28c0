// Finding 4 (slow clients): a request whose body never completes, or whose headers never end, gets 408 JSON and its
// socket closed within REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS; a held request already counts against the limit.
// Before the fix the held body stayed open (seen at 330 s): this test's 5 s deadline passed with no answer.
import t from 'tap'
import { build } from '../helper.js'
import { exchange, parse, SECURITY_HEADERS, securityHeadersOf } from './lib.js'

const REQUEST_TIMEOUT_MS = 600
const HEADERS_TIMEOUT_MS = 300
const timeout = { statusCode: 408, error: 'Request Timeout', message: 'The request was not received in time', code: 'GW_REQUEST_TIMEOUT' }

t.test('a held body and unfinished headers get 408 JSON in time; held requests count against the limit', async (t) => {
  const app = await build(t, { REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), RATE_LIMIT_MAX: '2', RATE_LIMIT_KEY: 'ip' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const deposit = (body: string, length: number) =>
    `POST /users/load_test_held/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n${body}`

  // Two partial bodies held open at once: each is a request the limiter saw when its headers arrived.
  const held = [exchange(port, deposit('{"amo', 40)), exchange(port, deposit('{"amount"', 40))]
  for (const [i, answer] of (await Promise.all(held)).entries()) {
    const parsed = parse(answer.text)
    t.ok(answer.closedByServer, `held body #${i + 1}: the server closed the socket (after ${answer.ms} ms)`)
    t.ok(answer.ms < REQUEST_TIMEOUT_MS + 1500, `held body #${i + 1}: answered within REQUEST_TIMEOUT_MS plus the check interval (${answer.ms} ms)`)
    t.same({ status: parsed?.status, body: parsed?.body }, { status: 408, body: timeout }, `held body #${i + 1}: 408 JSON`)
    t.same(securityHeadersOf(parsed?.headers ?? {}), SECURITY_HEADERS, `held body #${i + 1}: with the security headers`)
  }
  const third = await app.inject({ method: 'POST', url: '/users/load_test_held/deposit', payload: { amount: 1 } })
  t.equal(third.statusCode, 429, 'the two held requests used the address\'s limit of 2: the third is 429')

  // Headers that never end (slowloris) and a socket that sends nothing at all.
  for (const [what, bytes] of [['unfinished headers', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-slow: 1\r\n'], ['a silent socket', '']] as const) {
    const answer = await exchange(port, bytes, { deadlineMs: 5000 })
    t.ok(answer.closedByServer && answer.ms < HEADERS_TIMEOUT_MS + 1500, `${what}: closed by the server after ${answer.ms} ms`)
    t.same(parse(answer.text)?.body, timeout, `${what}: 408 JSON`)
  }
})
