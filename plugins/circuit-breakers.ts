import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ThresholdBreaker, type BreakerState } from '../src/lib/threshold-breaker.js'
import { UPSTREAM_NAMES, type UpstreamName } from './upstreams.js'
import { isUpstreamFailure } from '../src/lib/upstream-errors.js'

export interface CircuitBreakersOptions {
  failureThreshold: number
  successThreshold: number
  resetTimeoutMs: number
}

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 }
const AUDIT_TYPE = { open: 'breaker_open', half_open: 'breaker_half_open', closed: 'breaker_closed' } as const

declare module 'fastify' {
  interface FastifyInstance {
    /** One breaker per upstream; one upstream's failures never open another's. */
    breakers: Record<UpstreamName, ThresholdBreaker>
  }
}

export default fp(async function circuitBreakers (fastify: FastifyInstance, opts: CircuitBreakersOptions) {
  const { breakerState, breakerTransitions } = fastify.gatewayMetrics
  const breakers = {} as Record<UpstreamName, ThresholdBreaker>
  for (const upstream of UPSTREAM_NAMES) {
    const breaker = new ThresholdBreaker({ name: upstream, ...opts, isFailure: isUpstreamFailure })
    breakerState.set({ upstream }, 0)
    breaker.onTransition((state) => {
      breakerState.set({ upstream }, STATE_VALUE[state])
      breakerTransitions.inc({ upstream, state })
      fastify.log.warn({ upstream, state }, 'circuit breaker transition')
      fastify.audit({ type: AUDIT_TYPE[state], outcome: state === 'closed' ? 'recovered' : 'failure', upstream, detail: `${upstream} circuit is ${state}` })
    })
    breakers[upstream] = breaker
  }
  fastify.decorate('breakers', breakers)
  fastify.addHook('onClose', async () => {
    for (const breaker of Object.values(breakers)) breaker.shutdown()
  })
}, { name: 'circuit-breakers', dependencies: ['metrics', 'audit-log'] })
