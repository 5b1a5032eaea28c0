// Agent API keys: `gwk_<keyId>_<secret>`. The prefix keeps them apart from user JWTs (which start with `eyJ`);
// only an HMAC-SHA256 of the whole key under a server-side pepper is stored, so a leaked store yields no usable key.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const KEY_PREFIX = 'gwk_'
const KEY_FORMAT = /^gwk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/
export const KEY_ID_PATTERN = '^[0-9a-f]{16}$'
/** Agent ids: the user-id alphabet plus dots (the seed's `agent-1234.5678`); no braces, whitespace or controls. */
export const AGENT_ID_PATTERN = '^[A-Za-z0-9_.-]{1,128}$'

export interface KeyRecord {
  keyId: string
  hash: string // hex HMAC-SHA256(pepper, key)
  agentId: string
  tier: string
  createdAt: number // ms since the epoch
  expiresAt: number | null
}

/** KEYS_PEPPER, or a pepper derived from JWT_SECRET (already required outside loopback) for one secret less. */
export function keysPepper (config: { KEYS_PEPPER?: string, JWT_SECRET?: string }): string {
  if (config.KEYS_PEPPER !== undefined) return config.KEYS_PEPPER
  if (config.JWT_SECRET === undefined) throw new Error('KEYS_PEPPER or JWT_SECRET must be set to hash agent keys')
  return createHmac('sha256', config.JWT_SECRET).update('gateway agent keys v1').digest('hex')
}

export function hashKey (pepper: string, key: string): string {
  return createHmac('sha256', pepper).update(key).digest('hex')
}

/** A fresh key and the record to store (the key itself is returned once and never stored). */
export function newKey (pepper: string, agentId: string, tier: string, expiresInSeconds?: number, now = Date.now()): { key: string, record: KeyRecord } {
  const keyId = randomBytes(8).toString('hex')
  const key = `${KEY_PREFIX}${keyId}_${randomBytes(32).toString('base64url')}`
  const expiresAt = expiresInSeconds === undefined ? null : now + expiresInSeconds * 1000
  return { key, record: { keyId, hash: hashKey(pepper, key), agentId, tier, createdAt: now, expiresAt } }
}

/** The key id of a well-formed key, else undefined (no store lookup for garbage). */
export function keyIdOf (key: string): string | undefined {
  return KEY_FORMAT.exec(key)?.[1]
}

/** Constant-time comparison of the presented key's HMAC with the stored one. */
export function keyMatches (pepper: string, key: string, record: KeyRecord): boolean {
  const presented = Buffer.from(hashKey(pepper, key), 'hex')
  const stored = Buffer.from(record.hash, 'hex')
  return presented.length === stored.length && timingSafeEqual(presented, stored)
}
