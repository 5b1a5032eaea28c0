import type { FastifyReply } from 'fastify'
import { relay } from '../../plugins/proxy.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, LoginBody, LoginReply } from '../../src/lib/schemas.js'

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/login', {
    config: { rateLimit: fastify.routeRateLimits.login },
    onRequest: fastify.loginGuards.onRequest,
    preHandler: fastify.loginGuards.preHandler,
    schema: { body: LoginBody, response: { 200: LoginReply, ...errorResponses(400, 401, 429, 502, 503, 504) } }
  }, async (request, reply) => {
    const upstream = await fastify.callUpstream(request, reply, 'auth', { method: 'POST', path: '/login', body: JSON.stringify(request.body) })
    const userId = request.body.username
    fastify.audit(upstream.statusCode === 200
      ? { type: 'login_success', outcome: 'success', userId }
      : { type: 'login_failure', outcome: 'denied', userId, detail: `auth answered ${upstream.statusCode}` }, request)
    return relay(reply as unknown as FastifyReply, upstream)
  })
}

export default auth
