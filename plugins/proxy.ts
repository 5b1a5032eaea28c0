import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { outcomeOf, toGatewayError, type UpstreamOutcome } from '../src/lib/upstream-errors.js'
import type { UpstreamCall, UpstreamName, UpstreamResponse } from './upstreams.js'

export type ForwardCall = Omit<UpstreamCall, 'headers'>

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Calls `upstream` through its breaker and sends its answer as is (status, content type, body: no parse, no
     * re-serialisation). `inspect` sees the answer first and may throw to answer otherwise. Failures become
     * 502/503/504 gateway errors.
     */
    proxy (upstream: UpstreamName, call: ForwardCall, inspect?: (answer: UpstreamResponse) => void): Promise<void>
  }
  interface FastifyInstance {
    /** Calls an upstream through its breaker; failures become 502/503/504 gateway errors. */
    callUpstream (request: FastifyRequest, reply: FastifyReply, upstream: UpstreamName, call: ForwardCall): Promise<UpstreamResponse>
    /** callUpstream's breaker, metrics and error mapping around any upstream work (the model route streams with it). */
    guardUpstream<T extends { statusCode: number }> (request: FastifyRequest, reply: FastifyReply, upstream: UpstreamName, work: () => Promise<T>): Promise<T>
    /** The headers every upstream call carries (allow-listed), for callers that dispatch themselves. */
    upstreamHeaders (request: FastifyRequest, hasBody: boolean): Record<string, string>
  }
}

export default fp(async function proxy (fastify: FastifyInstance) {
  const { upstreamDuration } = fastify.gatewayMetrics
  // One bound child per (upstream, outcome), made on first use: prom-client's startTimer would allocate an hrtime
  // array, two closures and a merged labels object per call.
  const observers = new Map<string, (seconds: number) => void>()
  function observeUpstream (upstream: UpstreamName, outcome: UpstreamOutcome, startedAt: number): void {
    const key = `${upstream}:${outcome}`
    let observe = observers.get(key)
    if (observe === undefined) observers.set(key, observe = upstreamDuration.labels({ upstream, outcome }).observe)
    observe((performance.now() - startedAt) / 1000)
  }

  // Headers are built from an allow-list, so hop-by-hop and client credentials never travel upstream.
  function upstreamHeaders (request: FastifyRequest, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { 'x-request-id': request.id, 'x-forwarded-for': request.ip }
    if (hasBody) headers['content-type'] = 'application/json'
    if (request.userId !== undefined) headers['x-user-id'] = request.userId
    if (request.lockLease) headers['x-fencing-token'] = String(request.lockLease.fence)
    return headers
  }

  async function guardUpstream<T extends { statusCode: number }> (request: FastifyRequest, reply: FastifyReply, upstream: UpstreamName, work: () => Promise<T>): Promise<T> {
    const breaker = fastify.breakers[upstream]
    const startedAt = performance.now()
    try {
      const response = await breaker.fire(work)
      observeUpstream(upstream, response.statusCode >= 400 ? 'client_error' : 'success', startedAt)
      return response
    } catch (err) {
      const outcome = outcomeOf(err)
      observeUpstream(upstream, outcome, startedAt)
      if (outcome === 'circuit_open') reply.header('retry-after', Math.max(1, Math.ceil(breaker.retryInMs / 1000)))
      else request.log.warn({ err, upstream }, 'upstream call failed')
      throw toGatewayError(upstream, err)
    }
  }

  fastify.decorate('guardUpstream', guardUpstream)
  fastify.decorate('upstreamHeaders', upstreamHeaders)
  function callUpstream (request: FastifyRequest, reply: FastifyReply, upstream: UpstreamName, call: ForwardCall): Promise<UpstreamResponse> {
    return guardUpstream(request, reply, upstream, () => fastify.upstreams.call(upstream, { ...call, headers: upstreamHeaders(request, call.body !== undefined) }))
  }
  fastify.decorate('callUpstream', callUpstream)

  fastify.decorateReply('proxy', async function proxy (this: FastifyReply, upstream: UpstreamName, call: ForwardCall, inspect?: (answer: UpstreamResponse) => void) {
    const answer = await callUpstream(this.request, this, upstream, call)
    inspect?.(answer)
    // The reply is a thenable that settles once the answer is sent, as `return reply` from a handler would.
    await this.code(answer.statusCode).type(answer.contentType).send(answer.body)
  })
}, { name: 'proxy', dependencies: ['upstreams', 'circuit-breakers', 'metrics', 'user-locks'] })
