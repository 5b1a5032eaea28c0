import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { pathOf } from '../src/lib/url-path.js'

export interface AccessLogOptions { enabled: boolean }

/**
 * One access line per request at info, written when the answer is done (Fastify's own two request lines are off:
 * `disableRequestLogging`). The route template, or the URL cut at `?` (a query string may hold a token).
 */
export default fp(async function accessLog (fastify: FastifyInstance, opts: AccessLogOptions) {
  // At debug, a line when a request arrives too (Fastify's own, which disableRequestLogging turned off): it tells which
  // requests a gateway had read before it began to close. Not registered at all above debug.
  if (fastify.log.level === 'debug' || fastify.log.level === 'trace') {
    fastify.addHook('onRequest', (request, _reply, done) => {
      request.log.debug({ method: request.method, url: pathOf(request.url).slice(0, 200) }, 'incoming request')
      done()
    })
  }
  if (!opts.enabled) return
  // A callback hook: it runs on every request, and an async hook costs a promise and a microtask each.
  fastify.addHook('onResponse', (request, reply, done) => {
    request.log.info({
      method: request.method,
      route: request.routeOptions.url ?? pathOf(request.url).slice(0, 200),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100
    }, 'request')
    done()
  })
}, { name: 'access-log' })
