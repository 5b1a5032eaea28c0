import t from 'tap'
import { createTokenSigner } from '../../src/lib/jwt.js'
import { hs256, goodClaims } from '../fixtures/hostile-corpus.js'
import { build, JWT_SECRET, servedCount, stubsFor } from '../helper.js'

// Security issue 12, finding 6: a request the gateway cannot send (undici refuses a header locally) is the caller's
// 400, never an upstream failure. Before the fix 5 tokens whose sub held CR/LF made undici refuse x-user-id, each
// counted as a failure, and the user breaker opened for everyone for BREAKER_RESET_TIMEOUT_MS (503 below).
t.test('5+ unsendable requests leave the breaker closed', async (t) => {
  const stubs = await stubsFor(t)
  const app = await build(t, { ...stubs.gatewayEnv, BREAKER_FAILURE_THRESHOLD: '5' })
  const now = Math.floor(Date.now() / 1000)

  // Through the whole app: the sub pattern refuses the token before any upstream call.
  const crlf = hs256({ ...goodClaims('load_test_x', now), sub: 'load_test_x\r\nx-evil: 1' }, JWT_SECRET)
  for (let i = 0; i < 6; i++) {
    const res = await app.inject({ url: '/users/load_test_x', headers: { authorization: `Bearer ${crlf}` } })
    t.equal(res.statusCode, 401, `CR/LF sub #${i + 1}: 401`)
  }

  // The general case, below the sub check: a header value undici refuses, through the user breaker.
  const served = await servedCount(stubs.user)
  for (let i = 0; i < 6; i++) {
    const err = await app.breakers.user.fire(() => app.upstreams.call('user', { method: 'GET', path: '/users/x', headers: { 'x-user-id': 'a\r\nb' } })).catch((e: unknown) => e)
    t.equal((err as { code?: string }).code, 'UND_ERR_INVALID_ARG', `call #${i + 1} was refused locally by undici`)
  }
  t.equal(app.breakers.user.state, 'closed', 'the breaker is still closed')
  t.equal(await servedCount(stubs.user), served, 'nothing reached the stub')

  const user = 'load_test_after_local'
  const token = createTokenSigner(JWT_SECRET, 3600)(user)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user, password: 'pw' } })
  const res = await app.inject({ url: `/users/${user}`, headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200, 'an ordinary request still goes through')
})

t.test('a local error maps to 400 GW_UPSTREAM_REQUEST_INVALID, not 502', async (t) => {
  const { toGatewayError, isUpstreamFailure } = await import('../../src/lib/upstream-errors.js')
  const local = Object.assign(new Error('invalid x-user-id header'), { code: 'UND_ERR_INVALID_ARG' })
  const mapped = toGatewayError('user', local)
  t.same({ statusCode: mapped.statusCode, code: mapped.code }, { statusCode: 400, code: 'GW_UPSTREAM_REQUEST_INVALID' })
  t.equal(isUpstreamFailure(local), false)
  t.equal(isUpstreamFailure(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), true, 'a refused connection still counts')
})
