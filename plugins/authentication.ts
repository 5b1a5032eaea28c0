import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ForbiddenError, UnauthorizedError } from '../src/errors.js'
import { bearerToken, createTokenVerifier } from '../src/lib/jwt.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token's subject; undefined without a valid Bearer token. */
    userId: string | undefined
    authFailure: string | undefined
  }
  interface FastifyContextConfig {
    /** The route needs a valid Bearer token. */
    auth?: boolean
    /** Where the user id the caller acts on sits; it must equal the token's subject. */
    owner?: 'params.id' | 'body.userId'
  }
}

export interface AuthenticationOptions {
  /** JWT_SECRET; start paths fill it (src/lib/start-secrets.ts), so undefined here is a wiring mistake. */
  secret: string | undefined
  ttlSeconds: number
}

export default fp(async function authentication (fastify: FastifyInstance, opts: AuthenticationOptions) {
  if (opts.secret === undefined) throw new Error('JWT_SECRET is not set: set it, or start through server.js / npm start, which generate one on loopback')
  const verify = createTokenVerifier(opts.secret, { maxTtlSeconds: opts.ttlSeconds })
  fastify.decorateRequest('userId', undefined)
  fastify.decorateRequest('authFailure', undefined)

  // Identify early (the rate limiter keys on the user), reject later: limits count unauthenticated floods too.
  function identify (request: FastifyRequest): void {
    const header = request.headers.authorization
    if (header === undefined || header.startsWith('Bearer gwk_')) return // agent keys: plugins/agent-keys.ts
    const token = bearerToken(header)
    if (!token) {
      request.authFailure = 'the Authorization header must be "Bearer <token>"'
      return
    }
    try {
      request.userId = verify(token).sub
    } catch {
      request.authFailure = 'the token is invalid or expired; log in again'
    }
  }

  function unauthenticated (request: FastifyRequest): Error | undefined {
    if (request.routeOptions.config.auth !== true || request.userId !== undefined) return
    const reason = request.authFailure ?? 'send "Authorization: Bearer <token>" from POST /auth/login'
    fastify.audit({ type: 'access_denied', outcome: 'denied', detail: `401 ${reason}` }, request)
    return new UnauthorizedError(reason)
  }

  function notOwner (request: FastifyRequest): Error | undefined {
    const owner = request.routeOptions.config.owner
    if (!owner) return
    const actedOn = owner === 'params.id' ? (request.params as { id: string }).id : (request.body as { userId: string }).userId
    if (actedOn === request.userId) return
    fastify.audit({ type: 'access_denied', outcome: 'denied', detail: `403 ${request.userId} acted on ${actedOn}` }, request)
    return new ForbiddenError(`user ${request.userId} may not act on user ${actedOn}`)
  }

  // Callback hooks: these run on every request, and an async hook costs a promise and a microtask each.
  fastify.addHook('onRequest', (request, _reply, done) => { identify(request); done() })
  fastify.addHook('preValidation', (request, _reply, done) => { done(unauthenticated(request)) })
  fastify.addHook('preHandler', (request, _reply, done) => { done(notOwner(request)) })
}, { name: 'authentication', dependencies: ['audit-log'] })
