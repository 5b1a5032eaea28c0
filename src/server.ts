import cluster from 'node:cluster'
import { pathToFileURL } from 'node:url'
import type { FastifyRequest } from 'fastify'
import { buildGateway } from './app.js'
import { DEV_JWT_SECRET, loadConfig, type GatewayConfig } from './config.js'
import { clientErrorHandler, expectationFailedHandler } from './error-handler.js'

/** Loads config or exits 1 with the variable's name in the message. */
export function configOrExit (env = process.env): GatewayConfig {
  try {
    return loadConfig(env)
  } catch (err) {
    console.error(`gateway: invalid configuration: ${(err as Error).message}`)
    process.exit(1)
  }
}

// How often, while closing, connections that went idle after their last answer are closed.
const IDLE_SWEEP_MS = 100
// How long close waits, once no socket is left, for the last answers' onResponse work (lock release, audit).
const RESPONSE_HOOKS_WAIT_MS = 3000

/**
 * The gateway process: listen, print the URL, close gracefully on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS.
 * Closing: no new connections; requests already read finish (locks released, audit flushed by the plugins' onClose);
 * requests arriving on kept-alive sockets get 503 with `Connection: close`; then the process exits 0 by itself.
 */
export async function startGateway (config: GatewayConfig, onClosed: () => void = () => {}) {
  const app = await buildGateway(config)
  if (config.JWT_SECRET === DEV_JWT_SECRET) app.log.warn('JWT_SECRET is the development default; set your own outside a laptop')

  // Requests the HTTP parser refuses, and unknown Expect headers, get the contract's JSON error (with `code`) instead of
  // Fastify's default body or Node's empty one.
  app.server.removeAllListeners('clientError')
  app.server.on('clientError', clientErrorHandler.bind(app))
  app.server.on('checkExpectation', expectationFailedHandler)

  let closing = false
  // Node closes only the sockets idle at close(); one busy then would stay open after its answer until the
  // keep-alive timeout (72 s) and hold close() past SHUTDOWN_TIMEOUT_MS. Answers sent while closing end their socket.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })

  // The server's 'close' comes when the last socket ends, which can be before the onResponse hooks of the last
  // answers have released their user locks; the plugins' onClose would then quit Redis under them (the lock would
  // stay until its TTL). Requests are counted until their last onResponse/onRequestAbort hook is done.
  const tracked = new WeakSet<FastifyRequest>()
  let inFlight = 0
  let drained: (() => void) | undefined
  // Callback hooks: they run on every request, and an async hook costs a promise and a microtask each.
  app.addHook('onRequest', (request, _reply, done) => {
    tracked.add(request)
    inFlight++
    done()
  })
  const untrack = (request: FastifyRequest) => {
    if (!tracked.delete(request)) return
    if (--inFlight === 0) drained?.()
  }
  // Added after every plugin's hooks, so they run after the lock release and the audit write.
  app.addHook('onResponse', (request, _reply, done) => { untrack(request); done() })
  app.addHook('onRequestAbort', (request, done) => { untrack(request); done() })
  // onClose hooks run last-registered first: this one right after the HTTP server's close, before the plugins'.
  app.addHook('onClose', async () => {
    if (inFlight === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      new Promise<void>((resolve) => { drained = resolve }),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, RESPONSE_HOOKS_WAIT_MS) })
    ])
    clearTimeout(timer)
    if (inFlight > 0) app.log.warn({ inFlight }, 'closing with response hooks still running')
  })

  await app.listen({ host: config.HOST, port: config.PORT })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  // A cluster worker stays quiet: the primary prints the one line once every worker listens (src/workers.ts).
  if (!cluster.isWorker) console.log(`gateway listening on http://${config.HOST}:${port}`)

  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'closing: no new connections, finishing in-flight requests')
    const timer = setTimeout(() => {
      app.log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'graceful close timed out')
      process.exit(1)
    }, config.SHUTDOWN_TIMEOUT_MS)
    // An answer whose headers were already on the wire when the signal came leaves its socket idle: sweep those.
    const sweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS)
    app.close().then(() => {
      clearTimeout(timer)
      clearInterval(sweep)
      onClosed()
      // No process.exit(0) here: an audit-log write still in the thread pool would be cut. The loop is empty once
      // every plugin has closed; the unref'd timer only ends a process something else keeps alive.
      process.exitCode = 0
      setTimeout(() => {
        app.log.warn('handles still open after close; exiting anyway')
        process.exit(0)
      }, 2000).unref()
    }, (err) => {
      app.log.error({ err }, 'close failed')
      process.exit(1)
    })
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
  return app
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // workers.ts imports this file: awaiting it at the top level here would make that import wait on itself.
  void import('./workers.js').then(({ runGateway }) => runGateway(configOrExit()))
}
