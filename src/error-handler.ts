import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import {
  BadRequestError, BadUrlError, ExpectationFailedError, HeadersTooLargeError, MalformedRequestError, RequestTimeoutError,
  InternalError, RouteNotFoundError, UNCLASSIFIED_CODE, UriTooLongError, errorBody
} from './errors.js'
import { SECURITY_HEADERS } from './lib/security-headers.js'
import { pathOf } from './lib/url-path.js'

export interface ErrorHandlerOptions {
  /** Runs before the not-found answer: the gateway passes its rate limiter, so unknown paths count against the client. */
  notFoundPreHandler?: RouteShorthandOptions['preHandler']
}

/** The one error shape: { statusCode, error, message, code }; 5xx messages never carry internals. */
export function installErrorHandlers (app: FastifyInstance, opts: ErrorHandlerOptions = {}): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600
    const statusCode = known ? err.statusCode! : 500
    const code = err.validation ? new BadRequestError('').code : known ? err.code ?? UNCLASSIFIED_CODE : new InternalError().code
    const ours = typeof err.code === 'string' && err.code.startsWith('GW_')
    const message = statusCode < 500 || ours ? err.message : new InternalError().message
    if (statusCode >= 500 && !ours) request.log.error({ err }, 'unhandled error')
    else request.log.debug({ statusCode, code, message }, 'request refused') // the access line has the status
    // Set here too: a hook that refuses before plugins/headers' onRequest (refuseAmbiguousHeaders) would skip them.
    return reply.code(statusCode).headers(SECURITY_HEADERS).send(errorBody({ statusCode, code, message }))
  })

  app.setNotFoundHandler({ preHandler: opts.notFoundPreHandler }, (request, reply) => {
    // The path only: a query string may carry a token a client put there by mistake.
    const path = pathOf(request.url).slice(0, 200)
    request.log.debug({ method: request.method, path }, 'no such route') // the access line has the 404
    return reply.code(404).send(errorBody(new RouteNotFoundError(request.method, path)))
  })
}

/**
 * Fastify's `frameworkErrors` option: the router's own refusals (a path that is not valid percent-encoding, a
 * parameter longer than maxParamLength) in our shape. They run no hook, so the security headers are set here, and
 * the path is never echoed (Fastify's default puts the decoded path in the message).
 */
export function frameworkErrors (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const answer = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new UriTooLongError() : err.code === 'FST_ERR_BAD_URL' ? new BadUrlError() : new BadRequestError('Bad request')
  request.log.info({ statusCode: answer.statusCode, code: answer.code }, 'request refused by the router')
  reply.code(answer.statusCode!).headers(SECURITY_HEADERS).header('x-request-id', request.id).send(errorBody(answer))
}

// Requests Node's HTTP parser refuses (bad framing, header overflow, bare CR/LF, the request or headers timeout) never
// reach Fastify's error handler; Fastify's default clientErrorHandler answers them without `code` or security headers.
const CLIENT_ERRORS: Record<string, () => FastifyError> = {
  HPE_HEADER_OVERFLOW: () => new HeadersTooLargeError(),
  ERR_HTTP_REQUEST_TIMEOUT: () => new RequestTimeoutError()
}
const SECURITY_HEADER_LINES = Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')

/** A whole HTTP/1.1 answer as bytes, for the places that only hold a socket. */
function rawAnswer (err: FastifyError): string {
  const body = JSON.stringify(errorBody(err))
  return `HTTP/1.1 ${err.statusCode} ${STATUS_CODES[err.statusCode!]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n${SECURITY_HEADER_LINES}connection: close\r\n\r\n${body}`
}

/** Fastify's `clientErrorHandler` option (called with the instance as `this`): a JSON error, then the socket closes. */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const answer = (CLIENT_ERRORS[err.code ?? ''] ?? (() => new MalformedRequestError()))()
  this.log.debug({ err: { code: err.code, message: err.message } }, 'malformed request refused')
  // An answer already on its way (headers sent) must not get a second status line in the middle of it.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage
  if (socket.writable && !inFlight?.headersSent) socket.write(rawAnswer(answer))
  socket.destroy(err)
}

/** The server's 'checkExpectation' listener: an Expect other than 100-continue gets 417 in our shape, not Node's empty 417. */
export function expectationFailedHandler (_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify(errorBody(new ExpectationFailedError()))
  res.writeHead(417, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
  res.end(body)
}

/**
 * An `onRequest` hook refusing (400) header sets that two parties could read two ways: an HTTP/1.1 request without a
 * Host header or with more than one (RFC 9112 §3.2), and more than one Authorization (Node keeps the first; a proxy
 * in front may have checked the last). Node checks only a missing Host, with a bare 400 of its own, so the server
 * turns that check off (`http: { requireHostHeader: false }`) and every case gets the JSON error here.
 */
export function refuseAmbiguousHeaders (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  const raw = request.raw.rawHeaders
  let hosts = 0
  let authorizations = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    else if (name.length === 13 && name.toLowerCase() === 'authorization') authorizations++
  }
  // A callback hook: it runs on every request, and an async hook costs a promise and a microtask more.
  if (hosts > 1 || (hosts === 0 && request.raw.httpVersion === '1.1')) return done(new BadRequestError('An HTTP/1.1 request needs exactly one Host header'))
  done(authorizations > 1 ? new BadRequestError('Send one Authorization header') : undefined)
}
