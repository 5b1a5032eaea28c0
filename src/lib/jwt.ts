import { createSigner, createVerifier } from 'fast-jwt'
import { ID_PATTERN } from './keys.js'

export interface TokenClaims { sub: string }

/** Who signs (the auth stub) and for whom (the gateway); both are checked on every token. */
export const TOKEN_ISSUER = 'gateway-auth'
export const TOKEN_AUDIENCE = 'gateway'
/** Clocks of the signer and the verifier may differ this much (an iat this far ahead is still accepted). */
export const CLOCK_TOLERANCE_MS = 5_000
/** The longest lifetime a token may claim when the verifier is not told JWT_TTL_SECONDS. */
const DEFAULT_MAX_TTL_SECONDS = 3600
const SUBJECT = new RegExp(ID_PATTERN)

/** HS256 tokens shared by the auth stub (signs) and the gateway (verifies locally, no hop per request). */
export function createTokenSigner (secret: string, ttlSeconds: number) {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE })
  return (userId: string): string => sign({ sub: userId })
}

export interface TokenVerifierOptions {
  /** JWT_TTL_SECONDS: a token must carry exp and iat, and claim no longer a life than this. */
  maxTtlSeconds?: number
  /** Verified tokens remembered (FIFO beyond that). */
  cacheSize?: number
  /** A cached token is verified again after this long even when it expires later. */
  cacheTtlMs?: number
}

/**
 * Verifies HS256 tokens; a token verified before is answered from a cache keyed on the token string itself until
 * its `exp` (or `cacheTtlMs`). Hand-written rather than fast-jwt's `cache` option: that one keys entries on a
 * SHA-256 of the token (base64 decode, regexes and a hash on every request), which cost about as much as the HMAC it
 * saves, and a custom key builder there prints a security warning at start. The exact token string cannot collide.
 * A token must carry exp, iat (not in the future), iss, aud and a sub of the user-id pattern, and exp − iat ≤ the TTL.
 */
export function createTokenVerifier (secret: string, opts: TokenVerifierOptions = {}) {
  const { maxTtlSeconds = DEFAULT_MAX_TTL_SECONDS, cacheSize = 10_000, cacheTtlMs = 600_000 } = opts
  const verify = createVerifier({
    key: secret,
    algorithms: ['HS256'],
    requiredClaims: ['exp', 'iat', 'sub', 'iss', 'aud'],
    allowedIss: TOKEN_ISSUER,
    allowedAud: TOKEN_AUDIENCE,
    maxAge: maxTtlSeconds * 1000,
    clockTolerance: CLOCK_TOLERANCE_MS
  })
  const cache = new Map<string, { claims: TokenClaims, validUntil: number }>()

  return (token: string): TokenClaims => {
    const at = Date.now()
    const hit = cache.get(token)
    if (hit !== undefined) {
      if (at <= hit.validUntil) return hit.claims
      cache.delete(token)
    }
    const payload = verify(token) as { sub?: unknown, exp: number, iat: number }
    // fast-jwt checks neither that iat is not ahead nor that exp is within the TTL of iat: a signer's mistake or a
    // leaked key would otherwise mint tokens valid for years.
    if (typeof payload.iat !== 'number' || payload.iat * 1000 > at + CLOCK_TOLERANCE_MS) throw new Error('token issued in the future')
    if (typeof payload.exp !== 'number' || payload.exp - payload.iat > maxTtlSeconds) throw new Error('token lives longer than JWT_TTL_SECONDS')
    if (typeof payload.sub !== 'string' || !SUBJECT.test(payload.sub)) throw new Error('token subject is not a user id')
    const claims = { sub: payload.sub }
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string)
    // Cached until exp (in ms), never past it: fast-jwt's tolerance is for clocks that differ, not for the cache.
    cache.set(token, { claims, validUntil: Math.min(payload.exp * 1000, at + cacheTtlMs) })
    return claims
  }
}

export function bearerToken (header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(header)
  return match?.[1]
}
