import { existsSync, readFileSync, renameSync, unwatchFile, watchFile, writeFileSync } from 'node:fs'
import type { RedisClient } from '../redis-client.js'
import type { KeyRecord } from '../agent-keys.js'
import { keys } from '../keys.js'

/** One interface, two stores: the agent-keys plugin and `npm run keys` never know which one they have. */
export interface KeyStore {
  put (record: KeyRecord): Promise<void>
  get (keyId: string): Promise<KeyRecord | undefined>
  list (agentId: string): Promise<KeyRecord[]>
  /** Deletes the key; resolves with what it was, undefined when there was none. */
  remove (keyId: string): Promise<KeyRecord | undefined>
  setTier (keyId: string, tier: string): Promise<KeyRecord | undefined>
  close (): void
}

const expired = (record: KeyRecord, now: number) => record.expiresAt !== null && record.expiresAt <= now

/**
 * In memory, optionally persisted to `file` (embedded mode): written on every change and re-read when another
 * process (`npm run keys`) changes it, polled every 250 ms so a CLI revocation lands within the 1 s promise.
 */
export function createMemoryKeyStore (file?: string): KeyStore {
  let records = new Map<string, KeyRecord>()
  const load = () => {
    if (!file || !existsSync(file)) return
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { keys?: KeyRecord[] }
    records = new Map((parsed.keys ?? []).map((r) => [r.keyId, r]))
  }
  const save = () => {
    if (!file) return
    // Write-then-rename: a reader never sees half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify({ keys: [...records.values()] }, null, 2) + '\n', { mode: 0o600 })
    renameSync(`${file}.tmp`, file)
  }
  load()
  if (file) watchFile(file, { interval: 250, persistent: false }, () => { try { load() } catch {} })
  return {
    async put (record) { records.set(record.keyId, record); save() },
    async get (keyId) { return records.get(keyId) },
    async list (agentId) {
      const now = Date.now()
      return [...records.values()].filter((r) => r.agentId === agentId && !expired(r, now))
    },
    async remove (keyId) {
      const record = records.get(keyId)
      if (record) { records.delete(keyId); save() }
      return record
    },
    async setTier (keyId, tier) {
      const record = records.get(keyId)
      if (!record) return undefined
      record.tier = tier
      save()
      return record
    },
    close () { if (file) unwatchFile(file) }
  }
}

// Only an existing key's tier changes: a tier update racing a revocation must not bring back half a record.
const SET_TIER_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 't', ARGV[1])
  return 1
end
return 0
`

type KeyRedis = RedisClient & { gatewayKeySetTier (key: string, tier: string): Promise<number> }

function fromHash (keyId: string, h: Record<string, string>): KeyRecord | undefined {
  if (!h.h) return undefined
  return { keyId, hash: h.h, agentId: h.a, tier: h.t, createdAt: Number(h.c), expiresAt: h.e === '0' ? null : Number(h.e) }
}

/** One hash per key (expiring with the key) plus a set of key ids per agent for listing; stale ids are pruned. */
export function createRedisKeyStore (redis: RedisClient): KeyStore {
  if (!('gatewayKeySetTier' in redis)) redis.defineCommand('gatewayKeySetTier', { numberOfKeys: 1, lua: SET_TIER_LUA })
  const client = redis as KeyRedis
  const get = async (keyId: string) => fromHash(keyId, await client.hgetall(keys.agentKey(keyId)))
  return {
    async put (r) {
      const key = keys.agentKey(r.keyId)
      await client.hset(key, { h: r.hash, a: r.agentId, t: r.tier, c: r.createdAt, e: r.expiresAt ?? 0 })
      if (r.expiresAt !== null) await client.pexpireat(key, r.expiresAt)
      await client.sadd(keys.agentKeyIndex(r.agentId), r.keyId)
    },
    get,
    async list (agentId) {
      const ids = await client.smembers(keys.agentKeyIndex(agentId))
      const found = await Promise.all(ids.map(get))
      const now = Date.now()
      const stale = ids.filter((_, i) => found[i] === undefined)
      if (stale.length > 0) await client.srem(keys.agentKeyIndex(agentId), ...stale)
      return found.filter((r): r is KeyRecord => r !== undefined && !expired(r, now))
    },
    async remove (keyId) {
      const record = await get(keyId)
      if (!record) return undefined
      const removed = await client.del(keys.agentKey(keyId))
      await client.srem(keys.agentKeyIndex(record.agentId), keyId)
      return removed === 1 ? record : undefined
    },
    async setTier (keyId, tier) {
      if (await client.gatewayKeySetTier(keys.agentKey(keyId), tier) !== 1) return undefined
      return get(keyId)
    },
    close () {}
  }
}
