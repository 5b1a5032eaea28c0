import t from 'tap'
import Fastify from 'fastify'
import metrics from '../plugins/metrics.js'
import auditLog from '../plugins/audit-log.js'
import authentication from '../plugins/authentication.js'
import { installErrorHandlers } from '../src/error-handler.js'
import { createTokenSigner } from '../src/lib/jwt.js'
import { JWT_SECRET } from './helper.js'

// The plugin alone on a bare Fastify: identify in onRequest, 401 in preValidation, 403 in preHandler.
t.test('authentication plugin on a bare Fastify', async (t) => {
  const app = Fastify()
  installErrorHandlers(app)
  await app.register(metrics)
  await app.register(auditLog, { path: '/dev/null' })
  await app.register(authentication, { secret: JWT_SECRET, ttlSeconds: 3600 })
  app.get('/open', async (request) => ({ userId: request.userId ?? null }))
  app.get('/things/:id', { config: { auth: true, owner: 'params.id' } }, async (request) => ({ userId: request.userId }))
  t.teardown(() => app.close())

  const sign = createTokenSigner(JWT_SECRET, 60)
  const alice = { authorization: `Bearer ${sign('alice')}` }

  t.same((await app.inject({ url: '/open' })).json(), { userId: null }, 'no token: anonymous, not refused')
  t.same((await app.inject({ url: '/open', headers: alice })).json(), { userId: 'alice' }, 'a valid token identifies the user')
  t.same((await app.inject({ url: '/things/alice', headers: alice })).json(), { userId: 'alice' })

  const missing = await app.inject({ url: '/things/alice' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'GW_UNAUTHORIZED')

  const otherSecret = createTokenSigner('another-secret-0123456789-0123456789', 60)
  const forged = await app.inject({ url: '/things/alice', headers: { authorization: `Bearer ${otherSecret('alice')}` } })
  t.equal(forged.statusCode, 401, 'a token signed with another key is refused')

  const notYours = await app.inject({ url: '/things/bob', headers: alice })
  t.same(notYours.json(), { statusCode: 403, error: 'Forbidden', message: 'Not allowed: user alice may not act on user bob', code: 'GW_FORBIDDEN' })

  const metricsText = await (await app.inject({ url: '/metrics' })).body
  t.match(metricsText, /gateway_audit_events_total\{type="access_denied"\} 3/, 'two 401s and one 403 were audited')
})
