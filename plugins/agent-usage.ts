import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AgentTier } from '../src/lib/agent-tiers.js'
import type { BucketDecision } from '../src/lib/token-bucket.js'

/** Waits before each retry of a settlement the store did not confirm (a timeout may hide one that ran: see settle). */
const SETTLE_RETRY_DELAYS_MS = [100, 500]

/**
 * One reservation of a usage-based call, settled exactly once whatever happens (answer, upstream failure,
 * timeout, client abort, a thrown bug): the first settle wins and the others are no-ops.
 */
export interface Reservation {
  readonly agentId: string
  readonly tier: AgentTier
  readonly reserved: number
  /** The reservation's decision: what the bucket held right after it. */
  readonly decision: BucketDecision
  /** `used` tokens: refund the unused part or debit the overrun. undefined: usage unknown, keep the reservation. */
  charge (used: number | undefined): Promise<BucketDecision | undefined>
  /** The call failed: give the whole reservation back. */
  refund (): Promise<BucketDecision | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    agentUsage: ReturnType<typeof createAgentUsage>
  }
}

function createAgentUsage (fastify: FastifyInstance) {
  const { agentTokensReserved, agentTokensDebited, agentTokensRefunded } = fastify.gatewayMetrics
  for (const tier of fastify.agentTiers.all()) {
    for (const counter of [agentTokensReserved, agentTokensDebited, agentTokensRefunded]) counter.inc({ tier: tier.name }, 0)
  }

  return {
    /**
     * Takes `tokens` from the agent's bucket before the call (agentQuota.spend: 429 with Retry-After when short,
     * 503 when the store is away) and returns the reservation to settle once the call is over.
     */
    async reserve (request: FastifyRequest, reply: FastifyReply, agentId: string, tier: AgentTier, tokens: number): Promise<Reservation> {
      const decision = await fastify.agentQuota.spend(request, reply, agentId, tokens, tier)
      agentTokensReserved.inc({ tier: tier.name }, tokens)
      const store = fastify.agentQuota.bucket(tier.name)
      const settlementId = randomUUID()
      let settled = false
      async function settle (used: number): Promise<BucketDecision | undefined> {
        if (settled) return undefined
        settled = true
        for (let attempt = 0; ; attempt++) {
          try {
            const after = await store.settle(agentId, tokens, used, settlementId)
            agentTokensDebited.inc({ tier: tier.name }, used)
            agentTokensRefunded.inc({ tier: tier.name }, Math.max(0, tokens - used))
            return after
          } catch (err) {
            if (attempt < SETTLE_RETRY_DELAYS_MS.length) { await delay(SETTLE_RETRY_DELAYS_MS[attempt]); continue }
            // The reservation stays taken: the agent may lose tokens while Redis is away, but never overspends.
            request.log.warn({ err, agentId, reserved: tokens, used }, 'usage settlement failed; the reservation stays debited')
            return undefined
          }
        }
      }
      return {
        agentId,
        tier,
        reserved: tokens,
        decision,
        charge: (used) => settle(used ?? tokens),
        refund: () => settle(0)
      }
    }
  }
}

export default fp(async function agentUsage (fastify: FastifyInstance) {
  fastify.decorate('agentUsage', createAgentUsage(fastify))
}, { name: 'agent-usage', dependencies: ['agent-quota', 'agent-keys', 'metrics'] })
