import { STATUS_CODES } from 'node:http'
import createError from '@fastify/error'

// Every error code the gateway and its stubs answer with; messages say what to do next.
export const BadRequestError = createError('GW_BAD_REQUEST', '%s', 400)
export const UnauthorizedError = createError('GW_UNAUTHORIZED', 'Authentication required: %s', 401)
export const InvalidCredentialsError = createError('GW_INVALID_CREDENTIALS', 'Unknown user or wrong password', 401)
export const ForbiddenError = createError('GW_FORBIDDEN', 'Not allowed: %s', 403)
export const NotFoundError = createError('GW_NOT_FOUND', '%s not found', 404)
export const InsufficientFundsError = createError('GW_INSUFFICIENT_FUNDS', 'Balance of user %s is lower than the amount', 409)
export const StaleFencingTokenError = createError('GW_STALE_FENCING_TOKEN', 'Write for user %s carries a fencing token older than the last accepted one; retry the operation', 409)
// Refusals of a flood are control flow, made thousands of times a second: no stack trace is captured for them.
export const RateLimitedError = createError('GW_RATE_LIMITED', 'Rate limit exceeded; retry in %s seconds', 429, Error, false)
export const QuotaExceededError = createError('GW_QUOTA_EXCEEDED', 'Agent %s asked for %s tokens, more than its bucket holds now; retry in %s seconds', 429, Error, false)
export const BadGatewayError = createError('GW_BAD_GATEWAY', 'Upstream %s is unreachable or failed; retry later', 502)
export const CircuitOpenError = createError('GW_CIRCUIT_OPEN', 'Upstream %s is failing and its circuit is open; retry after the Retry-After delay', 503)
export const UserLockedError = createError('GW_USER_LOCKED', 'Another operation for user %s is in progress; retry after the Retry-After delay', 503)
export const LockUnavailableError = createError('GW_LOCK_UNAVAILABLE', 'The lock store is unreachable, so the write for user %s was refused; retry later', 503)
export const RateLimitUnavailableError = createError('GW_RATE_LIMIT_UNAVAILABLE', 'The rate-limit store is unreachable and the gateway fails closed; retry later', 503)
export const UpstreamTimeoutError = createError('GW_UPSTREAM_TIMEOUT', 'Upstream %s did not answer in time; retry later', 504)

// --- identity (security issue 12)
export const StubCredentialError = createError('GW_STUB_CREDENTIAL', 'This service answers the gateway only: send its %s header', 401)
export const UpstreamRequestInvalidError = createError('GW_UPSTREAM_REQUEST_INVALID', 'The request cannot be forwarded to %s as sent (a header or value it carries is not valid HTTP); fix the request', 400)
export const ClientAddressError = createError('GW_CLIENT_ADDRESS', 'The client address taken from the forwarded headers is not an IP address: %s', 400)
// --- request pipeline: answers the HTTP parser, Node and the router give before a route runs (sec-exhaustion)
export const MalformedRequestError = createError('GW_BAD_REQUEST', 'Malformed HTTP request', 400)
export const BadUrlError = createError('GW_BAD_REQUEST', 'The request path is not valid percent-encoding', 400)
export const RouteNotFoundError = createError('GW_NOT_FOUND', 'No route %s %s', 404)
export const RequestTimeoutError = createError('GW_REQUEST_TIMEOUT', 'The request was not received in time', 408)
export const UriTooLongError = createError('GW_URI_TOO_LONG', 'A path segment is longer than the gateway accepts', 414)
export const ExpectationFailedError = createError('GW_EXPECTATION_FAILED', 'Only "Expect: 100-continue" is supported; send the request without this Expect', 417)
export const HeadersTooLargeError = createError('GW_HEADERS_TOO_LARGE', 'Request line and headers exceed the 16 KiB limit', 431)
export const ShuttingDownError = createError('GW_SHUTTING_DOWN', 'The gateway is shutting down; retry on another instance', 503)
// What the error handler answers for an error that is not one of the above: an unknown throw (500), or a library's
// error with a status but no code (its own status, this code).
export const InternalError = createError('GW_INTERNAL', 'Internal server error', 500)
export const UNCLASSIFIED_CODE = 'GW_ERROR'
export const StubFaultError = createError('STUB_FAULT', '%s stub is in fault mode "fail"', 500)

/** The one JSON error body: { statusCode, error, message, code }. */
export function errorBody (err: { statusCode?: number, code: string, message: string }): { statusCode: number, error: string, message: string, code: string } {
  const statusCode = err.statusCode ?? 500
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message: err.message, code: err.code }
}
// --- agents (keys, tiers, admin API)
export const AgentKeyRequiredError = createError('GW_AGENT_KEY_REQUIRED', 'Agent key required: %s', 401)
export const AgentForbiddenError = createError('GW_AGENT_FORBIDDEN', 'Not allowed: %s', 403)
export const AgentParallelLimitError = createError('GW_AGENT_PARALLEL_LIMIT', 'Agent %s already has %s requests in flight, the most its tier allows; retry when one finishes', 429, Error, false)
export const KeyStoreUnavailableError = createError('GW_KEY_STORE_UNAVAILABLE', 'The agent-key store is unreachable, so nothing was changed; retry later', 503)
export const AdminUnauthorizedError = createError('GW_ADMIN_UNAUTHORIZED', 'Admin API: send "Authorization: Bearer <ADMIN_TOKEN>"', 401)
