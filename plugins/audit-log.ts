import { once } from 'node:events'
import { appendFileSync, writeSync } from 'node:fs'
import fp from 'fastify-plugin'
import pino from 'pino'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { pathOf } from '../src/lib/url-path.js'

export const AUDIT_TYPES = [
  'login_success', 'login_failure', 'access_denied',
  'rate_limit_exceeded', 'quota_exceeded',
  'breaker_open', 'breaker_half_open', 'breaker_closed',
  'lock_conflict', 'lock_expired',
  'redis_degraded', 'redis_recovered',
  'key_issued', 'key_revoked', 'agent_denied'
] as const
export type AuditType = typeof AUDIT_TYPES[number]

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

/** Denials a flood repeats: written once per key per interval, the rest summed into one `<type>_summary` line. */
export const AGGREGATED_TYPES: ReadonlySet<AuditType> = new Set(['rate_limit_exceeded', 'quota_exceeded'])
/** Keys aggregated at once; past it a denial is written on its own line (exact, just not O(windows)). */
const MAX_AGGREGATED_KEYS = 10_000

export interface AuditLogOptions {
  path?: string
  /** How often summed denials are written; 0 writes every denial on its own line. */
  denialFlushMs?: number
}

interface Pending { first: number, count: number, line: Record<string, unknown> }

export default fp(async function auditLog (fastify: FastifyInstance, opts: AuditLogOptions) {
  // Synchronous writes: each line reaches the kernel before the answer that caused it is sent, so even a SIGKILLed
  // gateway loses no event a client saw (async buffering lost lines answered ~40 ms before a kill in the chaos run).
  // A write(2) to the page cache costs microseconds; onClose still ends and closes the file before exit.
  // Workers of one gateway each open the file with O_APPEND and write a line in one write(2): lines never
  // interleave, none waits on another process, and a line is on disk before its answer leaves (SIGKILL-safe).
  const destination = pino.destination({ dest: opts.path ?? 1, sync: true, mkdir: true })
  let closed = false
  // After close (a timer firing late), a line is appended synchronously instead of thrown at a closed stream.
  const lateWrite = (line: string) => opts.path ? appendFileSync(opts.path, line) : writeSync(1, line)
  const sink = { write: (line: string) => closed ? lateWrite(line) : destination.write(line) }
  const logger = pino({
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'message',
    // Belt and braces: no field below carries a secret, but a future caller's detail object must not leak one.
    redact: { paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization'], censor: '[redacted]' }
  }, sink)
  const counter = fastify.gatewayMetrics.auditEvents
  for (const type of AUDIT_TYPES) counter.inc({ type }, 0)

  function lineFor (event: AuditEvent, request?: FastifyRequest): Record<string, unknown> {
    // Every line has the same keys (null when not applicable) so log queries never branch on a missing field;
    // `count` is how many events the line stands for (1, or the denials a summary sums).
    return {
      type: event.type,
      reqId: request?.id ?? null,
      ip: request?.ip ?? null,
      userId: event.userId ?? request?.userId ?? null,
      agentId: event.agentId ?? null,
      upstream: event.upstream ?? null,
      // The route template; an unmatched URL is cut at `?` so a query string (which may hold a token) never lands here.
      route: request ? `${request.method} ${request.routeOptions.url ?? pathOf(request.url).slice(0, 200)}` : null,
      outcome: event.outcome,
      detail: event.detail ?? null,
      count: 1
    }
  }

  // Denials by `type|subject`: a key present means its first denial of the interval is already on disk and later
  // ones are only counted here; a flush writes one summary per key with a count, and forgets keys that went quiet.
  const pending = new Map<string, Pending>()
  const flushMs = opts.denialFlushMs ?? 1000
  function flushDenials () {
    for (const [key, entry] of pending) {
      if (entry.count === 0) {
        pending.delete(key)
        continue
      }
      const line = entry.line
      logger.info({ ...line, type: `${line.type as string}_summary`, reqId: null, count: entry.count, since: new Date(entry.first).toISOString() })
      entry.count = 0
      entry.first = Date.now()
    }
  }
  const timer = flushMs > 0 ? setInterval(flushDenials, flushMs).unref() : undefined

  fastify.decorate('audit', function audit (event: AuditEvent, request?: FastifyRequest) {
    counter.inc({ type: event.type })
    if (timer !== undefined && !closed && AGGREGATED_TYPES.has(event.type)) {
      // The subject a flood repeats: the agent for quotas, else the limiter and key the detail names.
      const key = `${event.type}|${event.agentId ?? event.detail ?? ''}|${event.userId ?? ''}`
      const entry = pending.get(key)
      if (entry !== undefined) {
        // Only counted: the summary repeats the key's first line (same subject, limiter and route), so a flood's
        // denial builds no object.
        if (entry.count === 0) entry.first = Date.now()
        entry.count++
        return
      }
      if (pending.size < MAX_AGGREGATED_KEYS) pending.set(key, { first: Date.now(), count: 0, line: lineFor(event, request) })
    }
    logger.info(lineFor(event, request))
  })

  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    flushDenials()
    closed = true
    const done = once(destination, 'close')
    destination.end()
    await done
  })
}, { name: 'audit-log', dependencies: ['metrics'] })
