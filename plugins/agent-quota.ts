import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { QuotaExceededError, RateLimitUnavailableError } from '../src/errors.js'
import { createBucketStore } from '../src/lib/stores/index.js'
import type { Clock } from '../src/lib/stores/bucket-store.js'
import type { BucketSettings } from '../src/lib/token-bucket.js'

export interface AgentQuotaOptions extends BucketSettings {
  maxTokensPerRequest: number
  /** Injected clock for tests; production uses the Redis server clock (or Date.now in memory). */
  now?: Clock
}

function createAgentQuota (fastify: FastifyInstance, opts: AgentQuotaOptions) {
  const store = createBucketStore(fastify.sharedRedis, opts, opts.now)
  const { quotaTokensSpent, quotaTokensRefused, rateLimited } = fastify.gatewayMetrics
  const settings = { capacity: opts.capacity, refillPerSecond: opts.refillPerSecond, maxTokensPerRequest: opts.maxTokensPerRequest }

  // A quota that cannot be read is not granted: fail closed, so no agent overspends while Redis is away.
  async function guarded<T> (work: Promise<T>): Promise<T> {
    try {
      return await work
    } catch (err) {
      throw new RateLimitUnavailableError({ cause: err })
    }
  }

  return {
    settings,
    peek: (agentId: string) => guarded(store.peek(agentId)),
    /** Takes `tokens` from the agent's bucket or throws 429 with Retry-After = when they will be back. */
    async spend (request: FastifyRequest, reply: FastifyReply, agentId: string, tokens: number) {
      const decision = await guarded(store.consume(agentId, tokens))
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
}, { name: 'agent-quota', dependencies: ['redis', 'metrics', 'audit-log'] })
