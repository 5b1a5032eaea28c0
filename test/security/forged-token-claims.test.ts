import t from 'tap'
import Fastify from 'fastify'
import metrics from '../../plugins/metrics.js'
import auditLog from '../../plugins/audit-log.js'
import authentication from '../../plugins/authentication.js'
import { installErrorHandlers } from '../../src/error-handler.js'
import { forgedClaims, goodClaims, hs256 } from '../fixtures/hostile-corpus.js'
import { JWT_SECRET } from '../helper.js'

// Security issue 12, finding 1: with the real secret, a token is accepted only with exp (within JWT_TTL_SECONDS of
// iat), an iat not ahead, iss and aud as the auth stub signs them, and a sub of the user-id pattern.
// Before the fix every forged token here but the non-string sub was accepted (no exp, far exp, future iat, CR/LF sub, no iss/aud).
t.test('tokens signed with the real secret but a claim missing or out of bounds get 401', async (t) => {
  const app = Fastify()
  installErrorHandlers(app)
  await app.register(metrics)
  await app.register(auditLog, { path: '/dev/null' })
  await app.register(authentication, { secret: JWT_SECRET, ttlSeconds: 3600 })
  app.get('/things/:id', { config: { auth: true } }, async (request) => ({ userId: request.userId }))
  t.teardown(() => app.close())

  const now = Math.floor(Date.now() / 1000)
  const get = (claims: Record<string, unknown>) => app.inject({ url: '/things/alice', headers: { authorization: `Bearer ${hs256(claims, JWT_SECRET)}` } })

  const good = await get(goodClaims('alice', now))
  t.same({ status: good.statusCode, body: good.json() }, { status: 200, body: { userId: 'alice' } }, 'the same claims, all present and in bounds, are accepted (the refusals below are not vacuous)')
  const withinTolerance = await get({ ...goodClaims('alice', now), iat: now + 2 })
  t.equal(withinTolerance.statusCode, 200, 'an iat two seconds ahead (clock skew) is accepted')

  for (const [what, claims] of forgedClaims(JWT_SECRET, 'alice', now)) {
    const res = await get(claims)
    t.same({ status: res.statusCode, code: res.json().code }, { status: 401, code: 'GW_UNAUTHORIZED' }, `${what}: 401`)
  }
})
