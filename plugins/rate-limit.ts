import fp from 'fastify-plugin'
import fastifyRateLimit, { type RateLimitOptions } from '@fastify/rate-limit'
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { ClientAddressError, RateLimitedError, RateLimitUnavailableError } from '../src/errors.js'
import { createRateLimitStore } from '../src/lib/stores/rate-limit-store.js'

export interface RateLimitPluginOptions {
  max: number
  windowMs: number
  keyBy: 'user' | 'ip'
  loginMax: number
  loginWindowMs: number
  demoMax: number
  demoWindowMs: number
  /** Per client address per `windowMs`, on every request whatever identity it carries (RATE_LIMIT_IP_MAX). */
  ipMax: number
  /** POST /auth/login per client address per `loginWindowMs`, counted when the headers arrive. */
  loginIpMax: number
  /** POST /auth/login per username per `loginWindowMs`, every address together. */
  loginAccountMax: number
  failOpen: boolean
}

type Limiter = 'global' | 'login' | 'demo' | 'address' | 'login_address' | 'login_account'
type Check = ReturnType<FastifyInstance['createRateLimit']>
type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-route limits, referenced from a route's `config.rateLimit`. */
    routeRateLimits: Record<'login' | 'demo', RateLimitOptions>
    /** POST /auth/login's extra layers: per address when the headers arrive, per account once the body is parsed. */
    loginGuards: { onRequest: Hook, preHandler: Hook }
    /** The per-address ceiling (RATE_LIMIT_IP_MAX) as [start, enforce], to put around a limiter no route carries. */
    addressCeiling: [onRequestHookHandler, onRequestHookHandler]
  }
  interface FastifyRequest {
    /** The address ceiling's count, started before the route's own limit and read after it. */
    addressCount: ReturnType<Check> | undefined
  }
}

/**
 * Requests the per-address ceiling skips (besides routes with `rateLimit: false`, which never get its hook): requests
 * an agent API key authenticated (their own quota applies; the 'agent-keys' plugin sets request.agent in onRequest).
 */
function skipsAddressCeiling (request: FastifyRequest): boolean {
  return (request as { agent?: unknown }).agent !== undefined
}

export default fp(async function rateLimit (fastify: FastifyInstance, opts: RateLimitPluginOptions) {
  const { rateLimited, redisDegradation, redisDegraded } = fastify.gatewayMetrics

  const { Store, knowsOver } = createRateLimitStore(fastify.sharedRedis, opts.failOpen, {
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
  const ownKey = (request: FastifyRequest) => request.agent !== undefined ? `agent:${request.agent.agentId}` : clientKey(request)
  await fastify.register(fastifyRateLimit, {
    global: true,
    // --- agents: a request with a valid agent key (request.agent, plugins/agent-keys.ts) is counted per agent at its
    // tier's requests per minute instead of per client, so 10 000 agents behind one address each get their own limit.
    // The address ceiling skips those requests too (skipsAddressCeiling).
    max: (request) => request.agent !== undefined ? fastify.agentTiers.get(request.agent.tier).requestsPerMinute : opts.max,
    timeWindow: (request) => request.agent !== undefined ? 60_000 : opts.windowMs,
    store: Store,
    // The user id when a valid token came with the request, else the client IP (trusted proxies per TRUST_PROXY).
    keyGenerator: ownKey,
    errorResponseBuilder,
    onExceeded: onExceeded('global')
  })

  // A layer of its own (createRateLimit: no headers, no "already ran" flag shared with the route's limiter, which
  // must still run): a 429 from it carries the layer's figures and Retry-After.
  function refusal (limiter: Limiter, request: FastifyRequest, reply: FastifyReply, result: Awaited<ReturnType<Check>>): Error | undefined {
    if (result.isAllowed || !result.isExceeded) return
    onExceeded(limiter)(request, result.key)
    reply.header('x-ratelimit-limit', result.max).header('x-ratelimit-remaining', 0)
      .header('x-ratelimit-reset', result.ttlInSeconds).header('retry-after', result.ttlInSeconds)
    return new RateLimitedError(String(result.ttlInSeconds))
  }
  function enforce (limiter: Limiter, check: Check): Hook {
    return async function rateLimitLayer (request, reply) {
      const refused = refusal(limiter, request, reply, await check(request))
      if (refused) throw refused
    }
  }

  // The client address keys every layer: with TRUST_PROXY it comes from X-Forwarded-For, so it must be an IP.
  fastify.addHook('onRequest', (request, _reply, done) => {
    const ip = request.ip ?? ''
    done(isIP(ip) === 0 ? new ClientAddressError(JSON.stringify(ip.slice(0, 64))) : undefined)
  })
  // The address ceiling counts what reaches the store: its count is started just before the route's own limit and
  // read just after it, so on the default path both go to Redis in one script call (BatchedRedisStore batches an
  // event-loop turn) instead of two round trips one after the other. A client its own limit already refuses from
  // the over-limit cache (a flood) is not counted: no Redis call, and its address keeps its share for the others.
  const addressCheck = fastify.createRateLimit({
    max: opts.ipMax,
    timeWindow: opts.windowMs,
    keyGenerator: (request) => `a:${request.ip}`
  })
  const countAddress = (request: FastifyRequest) => {
    if (skipsAddressCeiling(request)) return
    const pending = addressCheck(request)
    pending.catch(() => {}) // read by enforceAddressCeiling; unread when the route's own limit refused first
    request.addressCount = pending
  }
  const startAddressCount: onRequestHookHandler = (request, _reply, done) => {
    if (!knowsOver(ownKey(request))) countAddress(request)
    done()
  }
  // Routes with limits of their own (login, demo) are counted at the address on every request.
  const startAddressCountAlways: onRequestHookHandler = (request, _reply, done) => {
    countAddress(request)
    done()
  }
  // A callback hook: it runs on every request, and an async hook costs a promise and a microtask more.
  const enforceAddressCeiling: onRequestHookHandler = (request, reply, done) => {
    const pending = request.addressCount
    if (pending === undefined) return done()
    request.addressCount = undefined
    pending.then((result) => done(refusal('address', request, reply, result)), done)
  }
  fastify.decorateRequest('addressCount', undefined)
  fastify.addHook('onRoute', (route) => {
    if (route.config?.rateLimit === false) return
    const start = route.config?.rateLimit === undefined ? startAddressCount : startAddressCountAlways
    route.onRequest = [start, ...(route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]), enforceAddressCeiling]
  })
  // The not-found handler's preHandler: [addressCeiling[0], app.rateLimit(), addressCeiling[1]] (src/app.ts).
  fastify.decorate('addressCeiling', [startAddressCount, enforceAddressCeiling])

  // Every 503 carries Retry-After; the client reconnects to Redis within half a second.
  fastify.addHook('onError', async (_request, reply, error) => {
    if (error instanceof RateLimitUnavailableError) reply.header('retry-after', 1)
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
  fastify.decorate('loginGuards', {
    onRequest: enforce('login_address', fastify.createRateLimit({
      max: opts.loginIpMax,
      timeWindow: opts.loginWindowMs,
      keyGenerator: (request) => `la:${request.ip}`
    })),
    // Guesses per account across addresses: a botnet trying one password each still meets this.
    preHandler: enforce('login_account', fastify.createRateLimit({
      max: opts.loginAccountMax,
      timeWindow: opts.loginWindowMs,
      keyGenerator: (request) => `lu:${(request.body as { username?: string } | undefined)?.username ?? ''}`
    }))
  })
// 'agent-keys' is not a dependency: without it request.agent is never set (src/app.ts registers it before this one).
}, { name: 'rate-limit', dependencies: ['redis', 'metrics', 'audit-log', 'authentication'] })
