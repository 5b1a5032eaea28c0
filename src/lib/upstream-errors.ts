import { BadGatewayError, CircuitOpenError, UpstreamTimeoutError } from '../errors.js'
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

/** The one mapping from undici and breaker failures to gateway errors: 503 open circuit, 504 timeout, 502 otherwise. */
export function toGatewayError (upstream: string, err: unknown): Error & { statusCode: number, code: string } {
  if (err instanceof BreakerOpenError) return new CircuitOpenError(upstream, { cause: err })
  const code = (err as { code?: string }).code
  if (code && TIMEOUT_CODES.has(code)) return new UpstreamTimeoutError(upstream, { cause: err })
  return new BadGatewayError(upstream, { cause: err })
}

export type UpstreamOutcome = 'success' | 'client_error' | 'server_error' | 'timeout' | 'unreachable' | 'circuit_open'

export function outcomeOf (err: unknown): UpstreamOutcome {
  if (err instanceof UpstreamServerError || err instanceof UpstreamAnswerRefusedError) return 'server_error'
  if (err instanceof BreakerOpenError) return 'circuit_open'
  const code = (err as { code?: string }).code
  if (code && TIMEOUT_CODES.has(code)) return 'timeout'
  return 'unreachable'
}
