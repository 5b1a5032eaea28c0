import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../redis-client.js'
import { keys } from '../keys.js'

export interface LockLease { userId: string, token: string, fence: number }

/** One interface, two stores. `release` resolves false when the lease had already expired (or was taken over). */
export interface LockStore {
  acquire (userId: string, ttlMs: number): Promise<LockLease | null>
  release (lease: LockLease): Promise<boolean>
}

/**
 * Fencing numbers start from the clock in microseconds, not from 1: the stubs outlive a gateway restart (and a Redis
 * that lost its counters), and a counter starting again at 1 would make every write look stale to them. Counting on
 * from "now" stays above anything issued before, unless a user took more than one lock per microsecond.
 */
export function fenceFloor (nowMs: number): number {
  return Math.floor(nowMs) * 1000
}

export function createMemoryLockStore (now: () => number = Date.now): LockStore {
  const held = new Map<string, { token: string, expiresAt: number }>()
  const fences = new Map<string, number>()
  const base = fenceFloor(now())
  return {
    async acquire (userId, ttlMs) {
      const at = now()
      const current = held.get(userId)
      if (current && current.expiresAt > at) return null
      const token = randomUUID()
      held.set(userId, { token, expiresAt: at + ttlMs })
      const fence = (fences.get(userId) ?? base) + 1
      fences.set(userId, fence)
      return { userId, token, fence }
    },
    async release ({ userId, token }) {
      const current = held.get(userId)
      if (!current || current.token !== token) return false
      held.delete(userId)
      return current.expiresAt > now()
    }
  }
}

// SET NX PX plus the fencing INCR in one step, so a fence number is only ever taken by a lock holder. The counter
// never falls below Redis's clock in microseconds (see fenceFloor): a Redis that lost the key keeps issuing numbers
// the stubs accept. %.0f because Redis would print a Lua number this large as 1.7e+15.
const ACQUIRE_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  local now = redis.call('TIME')
  local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
  if fence < floor then
    redis.call('SET', KEYS[2], string.format('%.0f', floor))
    return floor
  end
  return fence
end
return 0
`
// Compare-and-delete: only the holder's token releases the lock.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

type LockRedis = RedisClient & {
  gatewayLockAcquire (lockKey: string, fenceKey: string, token: string, ttlMs: number): Promise<number>
  gatewayLockRelease (lockKey: string, token: string): Promise<number>
}

export function createRedisLockStore (redis: RedisClient): LockStore {
  if (!('gatewayLockAcquire' in redis)) {
    redis.defineCommand('gatewayLockAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA })
    redis.defineCommand('gatewayLockRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
  }
  const client = redis as LockRedis
  return {
    async acquire (userId, ttlMs) {
      const token = randomUUID()
      let fence: number
      try {
        fence = await client.gatewayLockAcquire(keys.lock(userId), keys.fence(userId), token, ttlMs)
      } catch (err) {
        // A command that timed out here may still run once a stalled Redis catches up, leaving a lock nobody holds
        // (the caller answers 503): queue our compare-and-delete behind it on the same connection so it never outlives us.
        client.gatewayLockRelease(keys.lock(userId), token).catch(() => {})
        throw err
      }
      return fence === 0 ? null : { userId, token, fence: Number(fence) }
    },
    async release ({ userId, token }) {
      return (await client.gatewayLockRelease(keys.lock(userId), token)) === 1
    }
  }
}
