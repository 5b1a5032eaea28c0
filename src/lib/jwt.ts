import { createSigner, createVerifier } from 'fast-jwt'

export interface TokenClaims { sub: string }

/** HS256 tokens shared by the auth stub (signs) and the gateway (verifies locally, no hop per request). */
export function createTokenSigner (secret: string, ttlSeconds: number) {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000 })
  return (userId: string): string => sign({ sub: userId })
}

export function createTokenVerifier (secret: string) {
  // The cache skips the HMAC for a token already verified; expiry is still checked on every hit.
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], cache: 10_000 })
  return (token: string): TokenClaims => {
    const claims = verify(token) as Partial<TokenClaims>
    if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw new Error('token has no subject')
    return { sub: claims.sub }
  }
}

export function bearerToken (header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(header)
  return match?.[1]
}
