import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ID_PATTERN } from '../../src/lib/keys.js'
import { errorResponses } from '../../src/lib/schemas.js'

const AgentId = Type.String({ pattern: ID_PATTERN })
const Quota = Type.Object({
  agentId: Type.String(),
  capacity: Type.Integer(),
  remaining: Type.Integer(),
  refillPerSecond: Type.Number(),
  fullInMs: Type.Integer()
})

const api: FastifyPluginAsyncTypebox = async (fastify) => {
  const { capacity, refillPerSecond, maxTokensPerRequest } = fastify.agentQuota.settings
  // More than the bucket can ever hold is bad input: a 429 would promise a Retry-After that never comes true.
  const maxTokens = Math.min(maxTokensPerRequest, capacity)

  fastify.post('/request', {
    schema: {
      body: Type.Object({
        agentId: AgentId,
        tokens: Type.Integer({ minimum: 1, maximum: maxTokens })
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({ allowed: Type.Literal(true), agentId: Type.String(), spent: Type.Integer(), remaining: Type.Integer(), capacity: Type.Integer() }),
        ...errorResponses(400, 429, 503)
      }
    }
  }, async (request, reply) => {
    const { agentId, tokens } = request.body
    const decision = await fastify.agentQuota.spend(request, reply, agentId, tokens)
    return { allowed: true as const, agentId, spent: tokens, remaining: decision.remaining, capacity }
  })

  fastify.get('/quota/:agentId', {
    schema: { params: Type.Object({ agentId: AgentId }), response: { 200: Quota, ...errorResponses(400, 429, 503) } }
  }, async (request) => {
    const state = await fastify.agentQuota.peek(request.params.agentId)
    return { agentId: request.params.agentId, capacity, remaining: state.remaining, refillPerSecond, fullInMs: state.fullInMs }
  })

  // A deliberately tiny limit (RATE_LIMIT_DEMO_MAX per RATE_LIMIT_DEMO_WINDOW_MS) so anyone sees a 429 in a few calls.
  fastify.get('/test-rate-limit', {
    config: { rateLimit: fastify.routeRateLimits.demo },
    schema: { response: { 200: Type.Object({ ok: Type.Literal(true), message: Type.String() }), ...errorResponses(429) } }
  }, async () => ({ ok: true as const, message: 'within the demo limit; keep calling to see a 429' }))
}

export default api
