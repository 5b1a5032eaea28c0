import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, LoginBody, LoginReply } from '../../src/lib/schemas.js'

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/login', {
    config: { rateLimit: fastify.routeRateLimits.login },
    onRequest: fastify.loginGuards.onRequest,
    preHandler: fastify.loginGuards.preHandler,
    schema: { body: LoginBody, response: { 200: LoginReply, ...errorResponses(400, 401, 429, 502, 503, 504) } }
  }, (request, reply) => reply.proxy('auth', { method: 'POST', path: '/login', body: JSON.stringify(request.body) }, (answer) => {
    const userId = request.body.username
    fastify.audit(answer.statusCode === 200
      ? { type: 'login_success', outcome: 'success', userId }
      : { type: 'login_failure', outcome: 'denied', userId, detail: `auth answered ${answer.statusCode}` }, request)
  }))
}

export default auth
