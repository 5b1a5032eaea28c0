import { once } from 'node:events'
import fp from 'fastify-plugin'
import pino from 'pino'
import type { FastifyInstance, FastifyRequest } from 'fastify'

export type AuditType =
  | 'login_success' | 'login_failure' | 'access_denied'
  | 'rate_limit_exceeded' | 'quota_exceeded'
  | 'breaker_open' | 'breaker_half_open' | 'breaker_closed'
  | 'lock_conflict' | 'lock_expired'
  | 'redis_degraded' | 'redis_recovered'

export interface AuditEvent {
  type: AuditType
  outcome: 'success' | 'denied' | 'failure' | 'recovered'
  detail?: string
  userId?: string
  agentId?: string
  upstream?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Writes one security event, once, to the audit destination; pass the request when there is one. */
    audit (event: AuditEvent, request?: FastifyRequest): void
  }
}

export interface AuditLogOptions { path?: string }

export default fp(async function auditLog (fastify: FastifyInstance, opts: AuditLogOptions) {
  // Async writes with an unbounded buffer: nothing is dropped under load, and onClose flushes the rest.
  const destination = pino.destination({ dest: opts.path ?? 1, sync: false, mkdir: true })
  const logger = pino({
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'message',
    redact: { paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization'], censor: '[redacted]' }
  }, destination)
  const counter = fastify.gatewayMetrics.auditEvents

  fastify.decorate('audit', function audit (event: AuditEvent, request?: FastifyRequest) {
    logger.info({
      type: event.type,
      reqId: request?.id,
      ip: request?.ip,
      userId: event.userId ?? request?.userId,
      agentId: event.agentId,
      upstream: event.upstream,
      route: request ? `${request.method} ${request.routeOptions.url ?? request.url}` : undefined,
      outcome: event.outcome,
      detail: event.detail
    })
    counter.inc({ type: event.type })
  })

  fastify.addHook('onClose', async () => {
    // The file opens asynchronously; an app closed right after start must wait for it before flushing.
    if ((destination as unknown as { fd: number }).fd < 0) await once(destination, 'ready')
    destination.flushSync()
    if (opts.path) destination.end()
  })
}, { name: 'audit-log', dependencies: ['metrics'] })
