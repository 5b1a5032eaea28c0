import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../redis-client.js'
import { keys } from '../keys.js'

/** Requests in flight per agent. `acquire` resolves a lease id, or null when `max` are already held. */
export interface LeaseStore {
  acquire (agentId: string, max: number, ttlMs: number): Promise<string | null>
  release (agentId: string, leaseId: string): Promise<void>
}

/** One process holds every lease, so a counter is exact and dies with the process (no TTL needed). */
export function createMemoryLeaseStore (): LeaseStore {
  const held = new Map<string, Set<string>>()
  return {
    async acquire (agentId, max) {
      const leases = held.get(agentId) ?? new Set()
      if (leases.size >= max) return null
      const leaseId = randomUUID()
      leases.add(leaseId)
      held.set(agentId, leases)
      return leaseId
    },
    async release (agentId, leaseId) {
      const leases = held.get(agentId)
      if (!leases) return
      leases.delete(leaseId)
      if (leases.size === 0) held.delete(agentId)
    }
  }
}

// A sorted set of lease ids scored by expiry (Redis server clock): expired leases (a gateway died holding them) are
// dropped before counting, so the count is exact across gateways and self-healing.
const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

type LeaseRedis = RedisClient & { gatewayLeaseAcquire (key: string, max: number, ttlMs: number, leaseId: string): Promise<number> }

export function createRedisLeaseStore (redis: RedisClient): LeaseStore {
  if (!('gatewayLeaseAcquire' in redis)) redis.defineCommand('gatewayLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA })
  const client = redis as LeaseRedis
  return {
    async acquire (agentId, max, ttlMs) {
      const leaseId = randomUUID()
      try {
        return await client.gatewayLeaseAcquire(keys.agentLeases(agentId), max, ttlMs, leaseId) === 1 ? leaseId : null
      } catch (err) {
        // A timed-out acquire may still run later: queue the release behind it so no phantom lease is left.
        client.zrem(keys.agentLeases(agentId), leaseId).catch(() => {})
        throw err
      }
    },
    async release (agentId, leaseId) {
      await client.zrem(keys.agentLeases(agentId), leaseId)
    }
  }
}
