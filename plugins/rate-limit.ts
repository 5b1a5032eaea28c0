import fp from 'fastify-plugin'
import fastifyRateLimit, { type RateLimitOptions } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { RateLimitedError } from '../src/errors.js'
import { createRateLimitStore } from '../src/lib/stores/rate-limit-store.js'

export interface RateLimitPluginOptions {
  max: number
  windowMs: number
  keyBy: 'user' | 'ip'
  loginMax: number
  loginWindowMs: number
  demoMax: number
  demoWindowMs: number
  failOpen: boolean
}

type Limiter = 'global' | 'login' | 'demo'

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-route limits, referenced from a route's `config.rateLimit`. */
    routeRateLimits: Record<Exclude<Limiter, 'global'>, RateLimitOptions>
  }
}

export default fp(async function rateLimit (fastify: FastifyInstance, opts: RateLimitPluginOptions) {
  const { rateLimited, redisDegradation, redisDegraded } = fastify.gatewayMetrics

  const Store = createRateLimitStore(fastify.sharedRedis, opts.failOpen, {
    degraded (err) {
      redisDegradation.inc({ event: 'degraded' })
      redisDegraded.set(1)
      fastify.log.warn({ err }, opts.failOpen ? 'rate limiter: Redis failed, using the in-memory fallback' : 'rate limiter: Redis failed, refusing requests')
      fastify.audit({ type: 'redis_degraded', outcome: 'failure', detail: `${err.message}; failing ${opts.failOpen ? 'open' : 'closed'}` })
    },
    recovered () {
      redisDegradation.inc({ event: 'recovered' })
      redisDegraded.set(0)
      fastify.log.info('rate limiter: Redis is back')
      fastify.audit({ type: 'redis_recovered', outcome: 'recovered', detail: 'limits are shared through Redis again' })
    }
  })

  const onExceeded = (limiter: Limiter) => (request: FastifyRequest, key: string) => {
    rateLimited.inc({ limiter })
    fastify.audit({ type: 'rate_limit_exceeded', outcome: 'denied', detail: `${limiter} limit for ${key}` }, request)
  }
  const errorResponseBuilder: RateLimitOptions['errorResponseBuilder'] = (_request, context) =>
    new RateLimitedError(String(Math.ceil(context.ttl / 1000)))

  const clientKey = opts.keyBy === 'user'
    ? (request: FastifyRequest) => request.userId !== undefined ? `u:${request.userId}` : `ip:${request.ip}`
    : (request: FastifyRequest) => `ip:${request.ip}`
  await fastify.register(fastifyRateLimit, {
    global: true,
    // --- agents: a request with a valid agent key (request.agent, plugins/agent-keys.ts) is counted per agent at its
    // tier's requests per minute instead of per client, so 10 000 agents behind one address each get their own limit.
    // When RATE_LIMIT_IP_MAX's address ceiling lands, its allowList lets `request.agent !== undefined` through as well.
    max: (request) => request.agent !== undefined ? fastify.agentTiers.get(request.agent.tier).requestsPerMinute : opts.max,
    timeWindow: (request) => request.agent !== undefined ? 60_000 : opts.windowMs,
    store: Store,
    // The user id when a valid token came with the request, else the client IP (trusted proxies per TRUST_PROXY).
    keyGenerator: (request) => request.agent !== undefined ? `agent:${request.agent.agentId}` : clientKey(request),
    errorResponseBuilder,
    onExceeded: onExceeded('global')
  })

  // Every 503 carries Retry-After (CONTRACT.md); the client reconnects to Redis within half a second.
  fastify.addHook('onError', async (_request, reply, error) => {
    if ((error as { code?: string }).code === 'GW_RATE_LIMIT_UNAVAILABLE') reply.header('retry-after', 1)
  })

  fastify.decorate('routeRateLimits', {
    // Brute-force guard: keyed by IP and the username tried, so it needs the parsed body (preHandler).
    login: {
      max: opts.loginMax,
      timeWindow: opts.loginWindowMs,
      hook: 'preHandler',
      keyGenerator: (request: FastifyRequest) => `login:${request.ip}:${(request.body as { username?: string } | undefined)?.username ?? ''}`,
      onExceeded: onExceeded('login')
    },
    demo: {
      max: opts.demoMax,
      timeWindow: opts.demoWindowMs,
      keyGenerator: (request: FastifyRequest) => `demo:${request.ip}`,
      onExceeded: onExceeded('demo')
    }
  })
}, { name: 'rate-limit', dependencies: ['redis', 'metrics', 'audit-log', 'authentication', 'agent-keys'] })
