import { createSigner, createVerifier } from 'fast-jwt'

export interface TokenClaims { sub: string }

/** HS256 tokens shared by the auth stub (signs) and the gateway (verifies locally, no hop per request). */
export function createTokenSigner (secret: string, ttlSeconds: number) {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000 })
  return (userId: string): string => sign({ sub: userId })
}

export interface TokenVerifierOptions {
  /** Verified tokens remembered (FIFO beyond that). */
  cacheSize?: number
  /** A cached token is verified again after this long even when it expires later (or never). */
  cacheTtlMs?: number
}

/**
 * Verifies HS256 tokens; a token verified before is answered from a cache keyed on the token string itself until
 * its `exp` (or `cacheTtlMs`). Hand-written rather than fast-jwt's `cache` option: that one keys entries on a
 * SHA-256 of the token (base64 decode, regexes and a hash on every request), which cost about as much as the HMAC it
 * saves, and a custom key builder there prints a security warning at start. The exact token string cannot collide.
 */
export function createTokenVerifier (secret: string, opts: TokenVerifierOptions = {}) {
  const { cacheSize = 10_000, cacheTtlMs = 600_000 } = opts
  const verify = createVerifier({ key: secret, algorithms: ['HS256'] })
  const cache = new Map<string, { claims: TokenClaims, validUntil: number }>()

  return (token: string): TokenClaims => {
    const at = Date.now()
    const hit = cache.get(token)
    if (hit !== undefined) {
      if (at <= hit.validUntil) return hit.claims
      cache.delete(token)
    }
    const payload = verify(token) as { sub?: unknown, exp?: unknown }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new Error('token has no subject')
    const claims = { sub: payload.sub }
    // The same rule as fast-jwt's: valid while now <= exp (in ms).
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string)
    cache.set(token, { claims, validUntil: Math.min(expiresAt, at + cacheTtlMs) })
    return claims
  }
}

export function bearerToken (header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(header)
  return match?.[1]
}
