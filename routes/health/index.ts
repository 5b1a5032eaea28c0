import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { UPSTREAM_NAMES } from '../../plugins/upstreams.js'
import { holdsToken, isLocalOperator } from '../../src/lib/operator.js'

export interface HealthOptions {
  metricsToken?: string
  adminToken?: string
}

const BreakerStates = Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half_open')])
// redis and upstreams only for the operator: which dependency is down tells an attacker where to push.
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')]),
  redis: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('down'), Type.Literal('not_configured')])),
  upstreams: Type.Optional(Type.Record(Type.String(), Type.Object({ breaker: BreakerStates })))
})

const health: FastifyPluginAsyncTypebox<HealthOptions> = async (fastify, opts) => {
  // The prefix itself (/health), not /health/ as well: one route, one path in /openapi.json.
  fastify.get('/', {
    prefixTrailingSlash: 'no-slash',
    config: { rateLimit: false },
    schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  // 503 only when Redis is configured and unreachable; an open breaker degrades one upstream, not the gateway.
  // The status code and `status` are for everyone (load balancers); the detail for the callers /metrics trusts.
  fastify.get('/ready', {
    config: { rateLimit: false },
    schema: { response: { 200: Readiness, 503: Readiness } }
  }, async (request, reply) => {
    const redis = fastify.sharedRedis
      ? await fastify.sharedRedis.ping().then(() => 'ok' as const, () => 'down' as const)
      : 'not_configured' as const
    const upstreams = Object.fromEntries(UPSTREAM_NAMES.map((name) => [name, { breaker: fastify.breakers[name].state }]))
    const anyOpen = Object.values(upstreams).some((u) => u.breaker !== 'closed')
    const status = redis === 'down' ? 'unavailable' as const : anyOpen ? 'degraded' as const : 'ok' as const
    reply.code(redis === 'down' ? 503 : 200)
    const trusted = holdsToken(request, opts.metricsToken, opts.adminToken) || isLocalOperator(request)
    return trusted ? { status, redis, upstreams } : { status }
  })
}

export default health
