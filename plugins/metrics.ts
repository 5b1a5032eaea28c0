import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ForbiddenError } from '../src/errors.js'
import { bearerToken } from '../src/lib/jwt.js'

/** The gateway's own series; every custom metric lives here (snake_case, `gateway_` prefix). */
function createGatewayMetrics (client: FastifyInstance['metrics']['client']) {
  return {
    upstreamDuration: new client.Histogram({
      name: 'gateway_upstream_request_duration_seconds',
      help: 'Time spent calling an upstream, by upstream and outcome (success, client_error, server_error, timeout, unreachable, circuit_open)',
      labelNames: ['upstream', 'outcome'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    }),
    rateLimited: new client.Counter({ name: 'gateway_rate_limited_total', help: 'Requests refused with 429, by limiter (global, login, demo, agent_quota)', labelNames: ['limiter'] as const }),
    quotaTokensSpent: new client.Counter({ name: 'gateway_quota_tokens_spent_total', help: 'Agent-quota tokens granted' }),
    quotaTokensRefused: new client.Counter({ name: 'gateway_quota_tokens_refused_total', help: 'Agent-quota tokens asked for and refused' }),
    breakerState: new client.Gauge({ name: 'gateway_breaker_state', help: 'Circuit state per upstream: 0 closed, 1 half-open, 2 open', labelNames: ['upstream'] as const }),
    breakerTransitions: new client.Counter({ name: 'gateway_breaker_transitions_total', help: 'Circuit transitions per upstream, by new state (open, half_open, closed)', labelNames: ['upstream', 'state'] as const }),
    lockResults: new client.Counter({ name: 'gateway_lock_acquisitions_total', help: 'Per-user lock attempts and expiries, by result (acquired, conflict, expired, unavailable)', labelNames: ['result'] as const }),
    auditEvents: new client.Counter({ name: 'gateway_audit_events_total', help: 'Security events written to the audit log, by type', labelNames: ['type'] as const }),
    redisDegradation: new client.Counter({ name: 'gateway_redis_degradation_events_total', help: 'Redis store failures and recoveries seen by the limiters, by event (degraded, recovered)', labelNames: ['event'] as const }),
    redisDegraded: new client.Gauge({ name: 'gateway_redis_degraded', help: '1 while the limiters run on their in-memory fallback (or refuse, when failing closed)' })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    gatewayMetrics: ReturnType<typeof createGatewayMetrics>
  }
}

// fastify-metrics is CommonJS with an `exports.default`; ESM sees it one level down.
const fastifyMetrics = fastifyMetricsModule.default

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

export interface MetricsOptions { token?: string }

export default fp(async function metrics (fastify: FastifyInstance, opts: MetricsOptions) {
  // /metrics answers loopback peers (the socket's address, never X-Forwarded-For) or a bearer of METRICS_TOKEN.
  async function restrictToLoopbackOrToken (request: FastifyRequest, _reply: FastifyReply) {
    if (LOOPBACK.has(request.socket.remoteAddress ?? '')) return
    if (opts.token && bearerToken(request.headers.authorization) === opts.token) return
    throw new ForbiddenError('/metrics is served to loopback clients or with the METRICS_TOKEN bearer token')
  }

  await fastify.register(fastifyMetrics, {
    endpoint: {
      url: '/metrics',
      method: 'GET',
      logLevel: 'warn',
      onRequest: restrictToLoopbackOrToken,
      config: { rateLimit: false },
      schema: { hide: true },
      handler: () => {}
    },
    clearRegisterOnInit: true,
    defaultMetrics: { enabled: true },
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: false,
      routeBlacklist: ['/metrics'],
      overrides: { histogram: { buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] } }
    }
  })
  fastify.decorate('gatewayMetrics', createGatewayMetrics(fastify.metrics.client))
}, { name: 'metrics' })
