import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { SECURITY_HEADERS } from '../src/lib/security-headers.js'

export interface HeadersOptions {
  /** legacy: X-RateLimit-*; draft: draft-ietf-httpapi-ratelimit-headers-11 fields; both: the two. */
  rateLimitHeaders: 'legacy' | 'draft' | 'both'
  defaultWindowMs: number
}

export default fp(async function headers (fastify: FastifyInstance, opts: HeadersOptions) {
  // Hooks on every request take a callback: an async hook costs a promise and a microtask per request.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    reply.headers(SECURITY_HEADERS)
    done()
  })

  if (opts.rateLimitHeaders === 'legacy') return
  const dropLegacy = opts.rateLimitHeaders === 'draft'
  fastify.addHook('onSend', async (request, reply) => {
    const limit = reply.getHeader('x-ratelimit-limit')
    if (limit === undefined) return
    const routeLimit = request.routeOptions.config.rateLimit
    const windowMs = typeof routeLimit === 'object' && typeof routeLimit.timeWindow === 'number' ? routeLimit.timeWindow : opts.defaultWindowMs
    const remaining = reply.getHeader('x-ratelimit-remaining')
    const reset = reply.getHeader('x-ratelimit-reset')
    reply.header('ratelimit-policy', `"default";q=${limit};w=${Math.ceil(windowMs / 1000)}`)
    reply.header('ratelimit', `"default";r=${remaining};t=${reset}`)
    if (dropLegacy) reply.removeHeader('x-ratelimit-limit').removeHeader('x-ratelimit-remaining').removeHeader('x-ratelimit-reset')
  })
}, { name: 'headers', dependencies: ['rate-limit'] })
