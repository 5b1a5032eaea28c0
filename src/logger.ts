import pino from 'pino'
import type { FastifyRequest, FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from './config.js'
import { pathOf } from './lib/url-path.js'

/**
 * The gateway's logger: pino writing to stdout asynchronously (SonicBoom, sync: false), so a line never blocks the
 * event loop on write(2); pino flushes it synchronously when the process exits (SIGTERM included).
 */
export function gatewayLogger (config: GatewayConfig): NonNullable<FastifyServerOptions['logger']> {
  return {
    level: config.LOG_LEVEL,
    stream: pino.destination({ dest: 1, sync: false }),
    redact: ['req.headers.authorization', 'body.password'],
    // Fastify's request serializer without the query string: a client may put a token there (`?access_token=`).
    serializers: {
      req: (req) => {
        const request = req as unknown as FastifyRequest
        return { method: request.method, url: pathOf(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort }
      }
    }
  }
}
