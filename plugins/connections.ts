import fp from 'fastify-plugin'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ShuttingDownError } from '../src/errors.js'
import { expectationFailedHandler } from '../src/error-handler.js'

export interface ConnectionsOptions {
  /** Open connections one client address may hold (CONNECTIONS_PER_IP_MAX); more are destroyed at once. */
  perIpMax: number
}

// How often, while closing, connections that went idle after their last answer are closed.
const IDLE_SWEEP_MS = 100
// How long close waits, once no socket is left, for the last answers' onResponse work (lock release, audit).
const RESPONSE_HOOKS_WAIT_MS = 3000

/**
 * The client connections: how many one address may hold, and how they end when the gateway closes. Everything here
 * was once added by server.ts after the build; it lives in the app so tests built with buildGateway run it too.
 * Registered after every plugin with an onResponse hook and before the routes (see the map in src/app.ts).
 */
export default fp(async function connections (fastify: FastifyInstance, opts: ConnectionsOptions) {
  const { connectionsRefused } = fastify.gatewayMetrics

  // Counted on the socket's own address, not X-Forwarded-For: nothing is parsed yet, and that is the peer holding the
  // file descriptor. Behind a proxy the proxy is one address (see docs/HARDENING.md). Hand-written: Node's
  // server.maxConnections is one total for every client, which lets one address starve the others.
  const open = new Map<string, number>()
  fastify.server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? ''
    const count = (open.get(address) ?? 0) + 1
    if (count > opts.perIpMax) {
      connectionsRefused.inc()
      socket.destroy()
      return
    }
    open.set(address, count)
    socket.once('close', () => {
      const left = open.get(address)! - 1
      if (left === 0) open.delete(address)
      else open.set(address, left)
    })
  })

  // An Expect other than 100-continue gets 417 in the JSON shape (Fastify has no option for this listener).
  fastify.server.on('checkExpectation', expectationFailedHandler)

  let closing = false
  let closingSince = Infinity // performance.now() when close began, the clock of reply.elapsedTime
  let sweep: NodeJS.Timeout | undefined
  fastify.addHook('preClose', (done) => {
    closing = true
    closingSince = performance.now()
    // Node closes only the sockets idle at close(); an answer on the wire then leaves its socket idle later: sweep.
    sweep = setInterval(() => fastify.server.closeIdleConnections(), IDLE_SWEEP_MS)
    done()
  })

  // Callback hooks: they run on every request, and an async hook costs a promise and a microtask each.
  // Requests are counted until their last onResponse/onRequestAbort hook is done: the server's 'close' comes when the
  // last socket ends, which can be before the last answers' onResponse hooks have released their user locks; the
  // plugins' onClose would then quit Redis under them (the lock would stay until its TTL).
  const tracked = new WeakSet<FastifyRequest>()
  let inFlight = 0
  let drained: (() => void) | undefined
  fastify.addHook('onRequest', (request, reply, done) => {
    tracked.add(request)
    inFlight++
    // A request read after close began (on a kept-alive socket) is refused in the JSON shape; Fastify's own 503 has none.
    // One routed before (still in an earlier onRequest hook, e.g. the limiter's Redis call, when close began) finishes.
    if (closing && performance.now() - reply.elapsedTime >= closingSince) {
      reply.header('retry-after', 1)
      done(new ShuttingDownError())
      return
    }
    done()
  })
  // An answer sent while closing ends its socket, or it would stay open until the keep-alive timeout and hold close().
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  const untrack = (request: FastifyRequest) => {
    if (!tracked.delete(request)) return
    if (--inFlight === 0) drained?.()
  }
  // Registered after every plugin's hooks, so these run after the lock release and the audit write.
  fastify.addHook('onResponse', (request, _reply, done) => { untrack(request); done() })
  fastify.addHook('onRequestAbort', (request, done) => { untrack(request); done() })
  // onClose hooks run last-registered first: this one right after the HTTP server's close, before the earlier plugins'.
  fastify.addHook('onClose', async () => {
    clearInterval(sweep)
    if (inFlight === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      new Promise<void>((resolve) => { drained = resolve }),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, RESPONSE_HOOKS_WAIT_MS) })
    ])
    clearTimeout(timer)
    if (inFlight > 0) fastify.log.warn({ inFlight }, 'closing with response hooks still running')
  })
}, { name: 'connections', dependencies: ['metrics', 'user-locks', 'audit-log'] })
