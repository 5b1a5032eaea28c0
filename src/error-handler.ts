import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequestError } from './errors.js'

/** The one error shape: { statusCode, error, message, code }; 5xx messages never carry internals. */
export function installErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600
    const statusCode = known ? err.statusCode! : 500
    const code = err.validation ? 'GW_BAD_REQUEST' : known ? err.code ?? 'GW_ERROR' : 'GW_INTERNAL'
    const ours = typeof err.code === 'string' && err.code.startsWith('GW_')
    const message = statusCode < 500 || ours ? err.message : 'Internal server error'
    if (statusCode >= 500 && !ours) request.log.error({ err }, 'unhandled error')
    else request.log.debug({ statusCode, code, message }, 'request refused') // the access line has the status (perf)
    return reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code })
  })

  app.setNotFoundHandler((request, reply) => {
    // The path only: a query string may carry a token a client put there by mistake.
    const path = request.url.split('?')[0].slice(0, 200)
    request.log.debug({ method: request.method, path }, 'no such route') // the access line has the 404 (perf)
    return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `No route ${request.method} ${path}`, code: 'GW_NOT_FOUND' })
  })
}

// Requests Node's HTTP parser refuses (bad framing, header overflow, bare CR/LF, a header timeout) never reach
// Fastify's error handler; its default clientErrorHandler answers them without a `code`. Same answers, our shape.
const CLIENT_ERRORS: Record<string, { statusCode: number, code: string, message: string }> = {
  HPE_HEADER_OVERFLOW: { statusCode: 431, code: 'GW_HEADERS_TOO_LARGE', message: 'Request line and headers exceed the 16 KiB limit' },
  ERR_HTTP_REQUEST_TIMEOUT: { statusCode: 408, code: 'GW_REQUEST_TIMEOUT', message: 'The request was not received in time' }
}
const MALFORMED = { statusCode: 400, code: 'GW_BAD_REQUEST', message: 'Malformed HTTP request' }

/** Fastify's `clientErrorHandler` option (called with the instance as `this`): a JSON error, then the socket closes. */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const { statusCode, code, message } = CLIENT_ERRORS[err.code ?? ''] ?? MALFORMED
  this.log.debug({ err: { code: err.code, message: err.message } }, 'malformed request refused')
  if (socket.writable) {
    const body = JSON.stringify({ statusCode, error: STATUS_CODES[statusCode], message, code })
    socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

/** The server's 'checkExpectation' listener: an Expect other than 100-continue gets 417 in our shape, not Node's empty 417. */
export function expectationFailedHandler (_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({ statusCode: 417, error: STATUS_CODES[417], message: 'Only "Expect: 100-continue" is supported; send the request without this Expect', code: 'GW_EXPECTATION_FAILED' })
  res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
  res.end(body)
}

/**
 * An `onRequest` hook refusing (400) header sets that two parties could read two ways: an HTTP/1.1 request without a
 * Host header or with more than one (RFC 9112 §3.2), and more than one Authorization (Node keeps the first; a proxy
 * in front may have checked the last). Node checks only a missing Host, with a bare 400 of its own, so the server
 * turns that check off (`http: { requireHostHeader: false }`) and every case gets the JSON error here.
 */
export async function refuseAmbiguousHeaders (request: FastifyRequest): Promise<void> {
  const raw = request.raw.rawHeaders
  let hosts = 0
  let authorizations = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    else if (name.length === 13 && name.toLowerCase() === 'authorization') authorizations++
  }
  if (hosts > 1 || (hosts === 0 && request.raw.httpVersion === '1.1')) throw new BadRequestError('An HTTP/1.1 request needs exactly one Host header')
  if (authorizations > 1) throw new BadRequestError('Send one Authorization header')
}
