import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AdminUnauthorizedError, NotFoundError } from '../../src/errors.js'
import { AGENT_ID_PATTERN, KEY_ID_PATTERN } from '../../src/lib/agent-keys.js'
import { TIER_NAME_PATTERN } from '../../src/lib/agent-tiers.js'
import { errorResponses } from '../../src/lib/schemas.js'

const AgentParams = Type.Object({ agentId: Type.String({ pattern: AGENT_ID_PATTERN }) }, { additionalProperties: false })
const KeyParams = Type.Object({ keyId: Type.String({ pattern: KEY_ID_PATTERN }) }, { additionalProperties: false })
const Tier = Type.String({ pattern: TIER_NAME_PATTERN })
const KeySummary = Type.Object({
  keyId: Type.String(),
  agentId: Type.String(),
  tier: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()])
})

/**
 * The admin API (prefix /admin): issue, list, re-tier and revoke agent keys. Registered only when ADMIN_TOKEN is set,
 * so without it every /admin URL is the gateway's ordinary 404 JSON.
 */
const admin: FastifyPluginAsyncTypebox = async (fastify) => {
  // Encapsulated: guards only the routes below. Refused attempts are audited, never logged with the token.
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (fastify.isAdmin(request)) return done()
    fastify.audit({ type: 'access_denied', outcome: 'denied', detail: '401 admin API without the admin token' }, request)
    done(new AdminUnauthorizedError())
  })

  fastify.post('/agents/:agentId/keys', {
    schema: {
      params: AgentParams,
      body: Type.Optional(Type.Object({
        tier: Type.Optional(Tier),
        expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 86400 }))
      }, { additionalProperties: false })),
      response: { 201: Type.Object({ ...KeySummary.properties, key: Type.String() }), ...errorResponses(400, 401, 429, 503) }
    }
  }, async (request, reply) => {
    const issued = await fastify.agentKeys.issue(request.params.agentId, request.body ?? {}, request)
    return reply.code(201).send(issued)
  })

  fastify.get('/agents/:agentId/keys', {
    schema: { params: AgentParams, response: { 200: Type.Array(KeySummary), ...errorResponses(400, 401, 429, 503) } }
  }, async (request) => fastify.agentKeys.list(request.params.agentId))

  fastify.patch('/keys/:keyId', {
    schema: {
      params: KeyParams,
      body: Type.Object({ tier: Tier }, { additionalProperties: false }),
      response: { 200: KeySummary, ...errorResponses(400, 401, 404, 429, 503) }
    }
  }, async (request) => {
    const updated = await fastify.agentKeys.setTier(request.params.keyId, request.body.tier)
    if (!updated) throw new NotFoundError(`key ${request.params.keyId}`)
    return updated
  })

  fastify.delete('/keys/:keyId', {
    schema: { params: KeyParams, response: { 204: Type.Null(), ...errorResponses(400, 401, 404, 429, 503) } }
  }, async (request, reply) => {
    if (!await fastify.agentKeys.revoke(request.params.keyId, request)) throw new NotFoundError(`key ${request.params.keyId}`)
    return reply.code(204).send(null)
  })
}

export default admin
