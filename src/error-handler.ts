import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance } from 'fastify'

/** The one error shape: { statusCode, error, message, code }; 5xx messages never carry internals. */
export function installErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600
    const statusCode = known ? err.statusCode! : 500
    const code = err.validation ? 'GW_BAD_REQUEST' : known ? err.code ?? 'GW_ERROR' : 'GW_INTERNAL'
    const ours = typeof err.code === 'string' && err.code.startsWith('GW_')
    const message = statusCode < 500 || ours ? err.message : 'Internal server error'
    if (statusCode >= 500 && !ours) request.log.error({ err }, 'unhandled error')
    else request.log.info({ statusCode, code, message }, 'request refused')
    return reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code })
  })

  app.setNotFoundHandler((request, reply) => {
    request.log.info({ method: request.method, url: request.url }, 'no such route')
    return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `No route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`, code: 'GW_NOT_FOUND' })
  })
}
