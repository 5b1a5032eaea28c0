import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LockUnavailableError, UserLockedError } from '../src/errors.js'
import { createLockStore } from '../src/lib/stores/index.js'
import type { LockLease } from '../src/lib/stores/lock-store.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The per-user lock this request took; its fence number travels upstream as x-fencing-token, also after the
     * lock is released (a client that went away frees the lock, but its write may still be on the way).
     */
    lockLease: LockLease | undefined
  }
  interface FastifyContextConfig {
    /** Take the acting user's lock before the handler; contention answers 503 at once. */
    userLock?: boolean
  }
}

export interface UserLocksOptions { ttlMs: number }

// Operations under the lock take milliseconds, so "retry in a second" is the honest hint; the TTL is only the worst case.
const RETRY_AFTER_SECONDS = 1

export default fp(async function userLocks (fastify: FastifyInstance, opts: UserLocksOptions) {
  const store = createLockStore(fastify.sharedRedis)
  const { lockResults } = fastify.gatewayMetrics
  fastify.decorateRequest('lockLease', undefined)

  async function acquireUserLock (request: FastifyRequest, reply: FastifyReply) {
    const userId = request.userId!
    let lease: LockLease | null
    try {
      lease = await store.acquire(userId, opts.ttlMs)
    } catch (err) {
      // Fail closed: without the lock store no write goes through, so nothing can be spent twice.
      lockResults.inc({ result: 'unavailable' })
      reply.header('retry-after', RETRY_AFTER_SECONDS)
      throw new LockUnavailableError(userId, { cause: err })
    }
    if (!lease) {
      lockResults.inc({ result: 'conflict' })
      reply.header('retry-after', RETRY_AFTER_SECONDS)
      fastify.audit({ type: 'lock_conflict', outcome: 'denied', detail: `user ${userId} is locked by another operation` }, request)
      throw new UserLockedError(userId)
    }
    lockResults.inc({ result: 'acquired' })
    request.lockLease = lease
    // Fastify's onRequestAbort misses a client that leaves after its body was read (every locked route has a body:
    // fastify/fastify#4690); the response's 'close' comes in every case.
    if (reply.raw.destroyed) releaseUserLock(request)
    else reply.raw.once('close', () => { releaseUserLock(request) })
  }

  const releasedLeases = new WeakSet<LockLease>()

  async function releaseUserLock (request: FastifyRequest) {
    const lease = request.lockLease
    if (!lease || releasedLeases.has(lease)) return
    releasedLeases.add(lease)
    const released = await store.release(lease).catch((err) => {
      request.log.warn({ err, userId: lease.userId }, 'lock release failed; it will expire by its TTL')
      return true
    })
    if (released) return
    lockResults.inc({ result: 'expired' })
    request.log.warn({ userId: lease.userId, ttlMs: opts.ttlMs }, 'lock expired before the operation finished')
    fastify.audit({ type: 'lock_expired', outcome: 'failure', userId: lease.userId, detail: `held longer than ${opts.ttlMs} ms` }, request)
  }

  // Released before the answer is written (the upstream call is over by then), so a client that sends its next write
  // as soon as it reads this answer, to any instance, never meets its own lock; 'close' above covers a client gone away.
  // Attached to the locked routes only, so no other request pays for the hook.
  fastify.addHook('onRoute', (route) => {
    if (route.config?.userLock !== true) return
    route.preHandler = [...[route.preHandler ?? []].flat(), acquireUserLock]
    route.onSend = [...[route.onSend ?? []].flat(), releaseUserLock]
  })
}, { name: 'user-locks', dependencies: ['redis', 'metrics', 'audit-log', 'authentication'] })
