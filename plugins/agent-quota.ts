import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { QuotaExceededError, RateLimitUnavailableError } from '../src/errors.js'
import { createBucketStore } from '../src/lib/stores/index.js'
import type { BucketStore, Clock } from '../src/lib/stores/bucket-store.js'
import type { AgentTier } from '../src/lib/agent-tiers.js'

export interface AgentQuotaOptions {
  /** Injected clock for tests; production uses the Redis server clock (or Date.now in memory). */
  now?: Clock
}

function createAgentQuota (fastify: FastifyInstance, opts: AgentQuotaOptions) {
  // One store per tier (its capacity and refill), all on the agent's one bucket key: a tier change applies to the
  // agent's next request, starting from what its bucket holds (capped at the new capacity).
  const stores = new Map<string, BucketStore>()
  for (const tier of fastify.agentTiers.all()) stores.set(tier.name, createBucketStore(fastify.sharedRedis, tier, opts.now))
  const bucket = (tierName: string): BucketStore => stores.get(tierName) ?? stores.get('default')!
  const { quotaTokensSpent, quotaTokensRefused, rateLimited } = fastify.gatewayMetrics

  // A quota that cannot be read is not granted: fail closed, so no agent overspends while Redis is away.
  async function guarded<T> (work: Promise<T>): Promise<T> {
    try {
      return await work
    } catch (err) {
      throw new RateLimitUnavailableError({ cause: err })
    }
  }

  return {
    /** The BucketStore of a tier (unknown names: `default`), for callers that reserve and settle. */
    bucket,
    peek: (agentId: string, tier: AgentTier) => guarded(bucket(tier.name).peek(agentId)),
    /** Takes `tokens` from the agent's bucket or throws 429 with Retry-After = when they will be back. */
    async spend (request: FastifyRequest, reply: FastifyReply, agentId: string, tokens: number, tier: AgentTier) {
      const decision = await guarded(bucket(tier.name).consume(agentId, tokens))
      if (decision.allowed) {
        quotaTokensSpent.inc(tokens)
        return decision
      }
      quotaTokensRefused.inc(tokens)
      rateLimited.inc({ limiter: 'agent_quota' })
      const retryAfterSeconds = Math.ceil(decision.retryAfterMs / 1000)
      fastify.audit({ type: 'quota_exceeded', outcome: 'denied', agentId, detail: `asked ${tokens}, had ${decision.remaining}` }, request)
      reply.header('retry-after', retryAfterSeconds)
      throw new QuotaExceededError(agentId, tokens, String(retryAfterSeconds))
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    agentQuota: ReturnType<typeof createAgentQuota>
  }
}

export default fp(async function agentQuota (fastify: FastifyInstance, opts: AgentQuotaOptions) {
  fastify.decorate('agentQuota', createAgentQuota(fastify, opts))
}, { name: 'agent-quota', dependencies: ['redis', 'metrics', 'audit-log', 'agent-keys'] })
