import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import formbody from '@fastify/formbody'
import type { preValidationHookHandler } from 'fastify'
import { Type } from 'typebox'
import { BadRequestError } from '../../src/errors.js'
import { AGENT_ID_PATTERN } from '../../src/lib/agent-keys.js'
import { errorResponses } from '../../src/lib/schemas.js'

const AgentId = Type.String({ pattern: AGENT_ID_PATTERN })
const Quota = Type.Object({
  agentId: Type.String(),
  tier: Type.String(),
  capacity: Type.Integer(),
  remaining: Type.Integer(),
  refillPerSecond: Type.Number(),
  fullInMs: Type.Integer()
})

// A form body's values are strings: `tokens=1` becomes 1 for this content type only (JSON keeps strict types).
const coerceFormTokens: preValidationHookHandler = (request, _reply, done) => {
  const body = request.body as Record<string, unknown> | undefined
  if (typeof body?.tokens === 'string' && /^\d{1,9}$/.test(body.tokens) && request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
    body.tokens = Number(body.tokens)
  }
  done()
}

const api: FastifyPluginAsyncTypebox = async (fastify) => {
  // Form bodies only under /api: the IRL seed's k6 scripts post plain objects, which k6 sends form-encoded.
  await fastify.register(formbody, { bodyLimit: 1024 })
  const open = fastify.agentKeys.mode === 'open'
  // The schema bound is the largest any tier allows; each agent's own tier is checked in the handler.
  const maxTokens = Math.max(...fastify.agentTiers.all().map((t) => Math.min(t.maxTokensPerRequest, t.capacity)))

  fastify.post('/request', {
    // Open mode: per-agent buckets decide, not the per-address limiter (every k6 VU shares one address).
    config: { agent: 'spend', ...(open ? { rateLimit: false } : {}) },
    preValidation: coerceFormTokens,
    schema: {
      body: Type.Object({
        agentId: open ? AgentId : Type.Optional(AgentId),
        tokens: Type.Integer({ minimum: 1, maximum: maxTokens })
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({ allowed: Type.Literal(true), agentId: Type.String(), spent: Type.Integer(), remaining: Type.Integer(), capacity: Type.Integer() }),
        ...errorResponses(400, 401, 403, 429, 503)
      }
    }
  }, async (request, reply) => {
    const { agentId, tier } = fastify.actingAgent(request)!
    const { tokens } = request.body
    // More than the bucket can ever hold is bad input: a 429 would promise a Retry-After that never comes true.
    const most = Math.min(tier.maxTokensPerRequest, tier.capacity)
    if (tokens > most) throw new BadRequestError(`tokens must be at most ${most} for tier ${tier.name}`)
    const decision = await fastify.agentQuota.spend(request, reply, agentId, tokens, tier)
    return { allowed: true as const, agentId, spent: tokens, remaining: decision.remaining, capacity: tier.capacity }
  })

  fastify.get('/quota/:agentId', {
    config: { agent: 'read' },
    schema: { params: Type.Object({ agentId: AgentId }), response: { 200: Quota, ...errorResponses(400, 401, 403, 429, 503) } }
  }, async (request) => {
    const { agentId } = request.params
    // The key's own tier; an admin (or open mode) reads with the default tier's settings.
    const tier = request.agent?.agentId === agentId ? fastify.agentTiers.get(request.agent.tier) : fastify.agentTiers.default
    const state = await fastify.agentQuota.peek(agentId, tier)
    return { agentId, tier: tier.name, capacity: tier.capacity, remaining: state.remaining, refillPerSecond: tier.refillPerSecond, fullInMs: state.fullInMs }
  })

  // A deliberately tiny limit (RATE_LIMIT_DEMO_MAX per RATE_LIMIT_DEMO_WINDOW_MS) so anyone sees a 429 in a few calls.
  fastify.get('/test-rate-limit', {
    config: { rateLimit: fastify.routeRateLimits.demo },
    schema: { response: { 200: Type.Object({ ok: Type.Literal(true), message: Type.String() }), ...errorResponses(429) } }
  }, async () => ({ ok: true as const, message: 'within the demo limit; keep calling to see a 429' }))
}

export default api
