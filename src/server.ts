import { pathToFileURL } from 'node:url'
import { buildGateway } from './app.js'
import { DEV_JWT_SECRET, loadConfig, type GatewayConfig } from './config.js'

/** Loads config or exits 1 with the variable's name in the message. */
export function configOrExit (env = process.env): GatewayConfig {
  try {
    return loadConfig(env)
  } catch (err) {
    console.error(`gateway: invalid configuration: ${(err as Error).message}`)
    process.exit(1)
  }
}

/** The gateway process: listen, print the URL, close gracefully on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS. */
export async function startGateway (config: GatewayConfig, onClosed: () => void = () => {}) {
  const app = await buildGateway(config)
  if (config.JWT_SECRET === DEV_JWT_SECRET) app.log.warn('JWT_SECRET is the development default; set your own outside a laptop')
  await app.listen({ host: config.HOST, port: config.PORT })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  console.log(`gateway listening on http://${config.HOST}:${port}`)

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'closing: no new connections, finishing in-flight requests')
    const timer = setTimeout(() => {
      app.log.error('graceful close timed out')
      process.exit(1)
    }, config.SHUTDOWN_TIMEOUT_MS)
    app.close().then(() => {
      clearTimeout(timer)
      onClosed()
      process.exit(0)
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
  await startGateway(configOrExit())
}
