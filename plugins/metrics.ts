import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import promClient from 'prom-client'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ForbiddenError } from '../src/errors.js'
import { holdsToken, isLocalOperator } from '../src/lib/operator.js'
import { UPSTREAM_NAMES } from './upstreams.js'
import { metricsSource } from '../src/lib/cluster-metrics.js'

type PromClient = typeof promClient

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/** The gateway's own series; every custom metric lives here (snake_case, `gateway_` prefix). */
function createGatewayMetrics (client: PromClient, registry: InstanceType<PromClient['Registry']>) {
  const registers = [registry]
  const metrics = {
    upstreamDuration: new client.Histogram({
      name: 'gateway_upstream_request_duration_seconds',
      help: 'Time spent calling an upstream, by upstream and outcome (success, client_error, server_error, timeout, unreachable, circuit_open)',
      labelNames: ['upstream', 'outcome'] as const,
      buckets: DURATION_BUCKETS,
      registers
    }),
    rateLimited: new client.Counter({ name: 'gateway_rate_limited_total', help: 'Requests refused with 429, by limiter (global, login, demo, agent_quota, address, login_address, login_account)', labelNames: ['limiter'] as const, registers }),
    quotaTokensSpent: new client.Counter({ name: 'gateway_quota_tokens_spent_total', help: 'Agent-quota tokens granted', registers }),
    quotaTokensRefused: new client.Counter({ name: 'gateway_quota_tokens_refused_total', help: 'Agent-quota tokens asked for and refused', registers }),
    breakerState: new client.Gauge({ name: 'gateway_breaker_state', help: 'Circuit state per upstream: 0 closed, 1 half-open, 2 open', labelNames: ['upstream'] as const, registers, aggregator: 'max' }),
    breakerTransitions: new client.Counter({ name: 'gateway_breaker_transitions_total', help: 'Circuit transitions per upstream, by new state (open, half_open, closed)', labelNames: ['upstream', 'state'] as const, registers }),
    lockResults: new client.Counter({ name: 'gateway_lock_acquisitions_total', help: 'Per-user lock attempts and expiries, by result (acquired, conflict, expired, unavailable)', labelNames: ['result'] as const, registers }),
    auditEvents: new client.Counter({ name: 'gateway_audit_events_total', help: 'Security events written to the audit log, by type', labelNames: ['type'] as const, registers }),
    redisDegradation: new client.Counter({ name: 'gateway_redis_degradation_events_total', help: 'Redis store failures and recoveries seen by the limiters, by event (degraded, recovered)', labelNames: ['event'] as const, registers }),
    redisDegraded: new client.Gauge({ name: 'gateway_redis_degraded', help: '1 while the limiters run on their in-memory fallback (or refuse, when failing closed)', registers, aggregator: 'max' }),
    // --- client connections (sec-exhaustion)
    connectionsRefused: new client.Counter({ name: 'gateway_connections_refused_total', help: 'Connections closed at once because their address already held CONNECTIONS_PER_IP_MAX', registers }),
    // --- agent usage: usage-based debit of the model route, by tier only (agent ids are unbounded)
    agentTokensReserved: new client.Counter({ name: 'gateway_agent_tokens_reserved_total', help: 'Tokens reserved from agent buckets before a model call (max_tokens or the tier default), by tier', labelNames: ['tier'] as const, registers }),
    agentTokensDebited: new client.Counter({ name: 'gateway_agent_tokens_debited_total', help: 'Tokens finally charged for model calls (usage.total_tokens, or the reservation when the usage is unknown), by tier', labelNames: ['tier'] as const, registers }),
    agentTokensRefunded: new client.Counter({ name: 'gateway_agent_tokens_refunded_total', help: 'Reserved tokens given back (unused part, or all of it when the call failed), by tier', labelNames: ['tier'] as const, registers }),
    // --- agents: labelled by tier and reason (small, configured sets), never by agent id (unbounded)
    agentKeysIssued: new client.Counter({ name: 'gateway_agent_keys_issued_total', help: 'Agent API keys issued, by tier', labelNames: ['tier'] as const, registers }),
    agentKeysRevoked: new client.Counter({ name: 'gateway_agent_keys_revoked_total', help: 'Agent API keys revoked, by tier', labelNames: ['tier'] as const, registers }),
    agentDenied: new client.Counter({ name: 'gateway_agent_denied_total', help: 'Agent requests refused, by reason (missing_key, invalid_key, expired_key, wrong_agent, parallel_limit) and tier (none without a valid key)', labelNames: ['reason', 'tier'] as const, registers })
  }
  // Every known label value starts at 0, so the first event is a visible increase (rate() and increase() need a
  // previous sample) and dashboards show 0 rather than "no data" before anything happened.
  for (const limiter of ['global', 'login', 'demo', 'agent_quota', 'address', 'login_address', 'login_account']) metrics.rateLimited.inc({ limiter }, 0)
  for (const upstream of UPSTREAM_NAMES) {
    for (const state of ['open', 'half_open', 'closed']) metrics.breakerTransitions.inc({ upstream, state }, 0)
  }
  for (const result of ['acquired', 'conflict', 'expired', 'unavailable']) metrics.lockResults.inc({ result }, 0)
  for (const event of ['degraded', 'recovered']) metrics.redisDegradation.inc({ event }, 0)
  metrics.quotaTokensSpent.inc(0)
  metrics.quotaTokensRefused.inc(0)
  metrics.redisDegraded.set(0)
  metrics.connectionsRefused.inc(0)
  return metrics
}

declare module 'fastify' {
  interface FastifyInstance {
    gatewayMetrics: ReturnType<typeof createGatewayMetrics>
  }
}

// fastify-metrics is CommonJS with an `exports.default`; ESM sees it one level down.
const fastifyMetrics = fastifyMetricsModule.default

export interface MetricsOptions { token?: string }

export default fp(async function metrics (fastify: FastifyInstance, opts: MetricsOptions) {
  // /metrics answers a bearer of METRICS_TOKEN, or the operator on loopback (a loopback peer that relays nobody).
  async function restrictToLoopbackOrToken (request: FastifyRequest, _reply: FastifyReply) {
    if (holdsToken(request, opts.token) || isLocalOperator(request)) return
    throw new ForbiddenError('/metrics is served to loopback clients or with the METRICS_TOKEN bearer token')
  }

  // One registry per app instead of prom-client's global one: two gateways in one process (tests) keep their own
  // counts, and building a second app never wipes the first one's series.
  const registry = new promClient.Registry()
  await fastify.register(fastifyMetrics, {
    promClient,
    endpoint: null,
    defaultMetrics: { enabled: true, register: registry },
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      // Labels are route templates (`/users/:id`); unmatched URLs share the `__unknown__` route label.
      registeredRoutesOnly: false,
      routeBlacklist: ['/metrics'],
      overrides: { histogram: { buckets: DURATION_BUCKETS, registers: [registry] }, summary: { registers: [registry] } }
    }
  })
  // perf: with GATEWAY_WORKERS > 1, one answer sums every worker's series.
  const metricsText = metricsSource(registry)
  // Served here rather than by fastify-metrics, whose handler also merges in the global registry.
  fastify.get('/metrics', {
    logLevel: 'warn',
    onRequest: restrictToLoopbackOrToken,
    config: { rateLimit: false },
    schema: { hide: true }
  }, async (_request, reply) => reply.type(registry.contentType).send(await metricsText()))

  fastify.decorate('gatewayMetrics', createGatewayMetrics(promClient, registry))
}, { name: 'metrics' })
