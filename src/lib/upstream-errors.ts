import { BadGatewayError, CircuitOpenError, UpstreamRequestInvalidError, UpstreamTimeoutError } from '../errors.js'
import { BreakerOpenError } from './threshold-breaker.js'

/** Thrown inside the breaker for a 5xx answer so the breaker counts it; carries what the upstream said. */
export class UpstreamServerError extends Error {
  constructor (readonly upstream: string, readonly statusCode: number) {
    super(`upstream ${upstream} answered ${statusCode}`)
  }
}

/** An answer the gateway will not relay (not JSON, or over UPSTREAM_MAX_BODY_BYTES): a 502 and a breaker failure. */
export class UpstreamAnswerRefusedError extends Error {
  constructor (readonly upstream: string, readonly reason: string) {
    super(`upstream ${upstream} answer refused: ${reason}`)
  }
}

/**
 * The per-upstream deadline, enforced with a plain timer that aborts undici's request controller: undici's
 * headers/body timeouts run on its coarse "fast timers" (about 1 s resolution), so a 300 ms timeout would fire late.
 */
export class UpstreamDeadlineError extends Error {
  readonly code = 'ETIMEDOUT'
  constructor (readonly upstream: string, readonly timeoutMs: number) {
    super(`upstream ${upstream} did not answer within ${timeoutMs} ms`)
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])

/**
 * Errors raised here, before a byte reaches the upstream: undici refusing a header value or a request option, Node
 * refusing a header character. The request was bad, not the upstream: never a breaker failure (one crafted request
 * must not open the circuit for everyone, security issue 12 finding 6).
 */
const LOCAL_CODES = new Set([
  'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_HTTP_INVALID_HEADER_VALUE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE'
])

export function isLocalError (err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code
  return code !== undefined && LOCAL_CODES.has(code)
}

/** What the breaker counts: the upstream failing (5xx, timeout, unreachable), never the request being unsendable. */
export function isUpstreamFailure (err: unknown): boolean {
  return !isLocalError(err)
}

/** The one mapping from undici and breaker failures to gateway errors: 503 open circuit, 400 unsendable, 504 timeout, 502 otherwise. */
export function toGatewayError (upstream: string, err: unknown): Error & { statusCode: number, code: string } {
  if (err instanceof BreakerOpenError) return new CircuitOpenError(upstream, { cause: err })
  const code = (err as { code?: string }).code
  if (isLocalError(err)) return new UpstreamRequestInvalidError(upstream, { cause: err })
  if (code && TIMEOUT_CODES.has(code)) return new UpstreamTimeoutError(upstream, { cause: err })
  return new BadGatewayError(upstream, { cause: err })
}

export type UpstreamOutcome = 'success' | 'client_error' | 'server_error' | 'timeout' | 'unreachable' | 'circuit_open'

export function outcomeOf (err: unknown): UpstreamOutcome {
  if (err instanceof UpstreamServerError || err instanceof UpstreamAnswerRefusedError) return 'server_error'
  if (err instanceof BreakerOpenError) return 'circuit_open'
  if (isLocalError(err)) return 'client_error'
  const code = (err as { code?: string }).code
  if (code && TIMEOUT_CODES.has(code)) return 'timeout'
  return 'unreachable'
}
