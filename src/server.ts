import cluster from 'node:cluster'
import { pathToFileURL } from 'node:url'
import { buildGateway } from './app.js'
import type { GatewayConfig } from './config.js'
import { startConfigOrExit } from './lib/start-secrets.js'

/**
 * The gateway process: listen, print the URL, close gracefully on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS.
 * Closing (plugins/connections.ts): no new connections; requests already read finish (locks released, audit flushed by
 * the plugins' onClose); requests arriving on kept-alive sockets get 503 with `Connection: close`; then the process
 * exits 0 by itself. Every hook lives in the app (src/app.ts), so this file adds none.
 */
export async function startGateway (config: GatewayConfig, onClosed: () => void = () => {}) {
  const app = await buildGateway(config)

  await app.listen({ host: config.HOST, port: config.PORT })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  // A cluster worker stays quiet: the primary prints the one line once every worker listens (src/workers.ts).
  if (!cluster.isWorker) console.log(`gateway listening on http://${config.HOST}:${port}`)

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'closing: no new connections, finishing in-flight requests')
    const timer = setTimeout(() => {
      app.log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'graceful close timed out')
      process.exit(1)
    }, config.SHUTDOWN_TIMEOUT_MS)
    app.close().then(() => {
      clearTimeout(timer)
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
  startConfigOrExit('gateway', (config) => config.HOST).then(async (config) => {
    const { runGateway } = await import('./workers.js')
    await runGateway(config)
  }).catch((err: unknown) => {
    console.error('gateway: failed to start:', err)
    process.exit(1)
  })
}
