import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { bearerToken } from './jwt.js'
import { isLoopback } from './loopback.js'

// Headers a proxy adds: on a loopback peer they mean the peer is a proxy relaying someone else, not the operator.
const FORWARDING = ['x-forwarded-for', 'forwarded', 'x-real-ip']

/**
 * The operator on this machine: the peer is loopback, the client address after TRUST_PROXY is loopback, and no
 * forwarding header names anyone else. A proxy on loopback (nginx, a sidecar) relays everyone, so "loopback peer"
 * alone would trust the whole internet.
 */
export function isLocalOperator (request: FastifyRequest): boolean {
  if (!isLoopback(request.socket.remoteAddress) || !isLoopback(request.ip)) return false
  return FORWARDING.every((name) => request.headers[name] === undefined)
}

const digest = (value: string) => createHash('sha256').update(value).digest()

/** The request's Bearer token equals one of the configured tokens (unset ones never match); compared in constant time. */
export function holdsToken (request: FastifyRequest, ...tokens: Array<string | undefined>): boolean {
  const presented = bearerToken(request.headers.authorization)
  if (presented === undefined) return false
  const mine = digest(presented)
  return tokens.some((token) => token !== undefined && timingSafeEqual(digest(token), mine))
}
