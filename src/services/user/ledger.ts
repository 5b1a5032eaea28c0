import type { RedisClient } from '../../lib/redis-client.js'
import { keys } from '../../lib/keys.js'

export type LedgerResult = { status: 'ok', balance: number } | { status: 'insufficient', balance: number } | { status: 'stale_fence', balance: number }

/** Balances in cents. A write carrying a fencing token older than the last accepted one for the user is refused. */
export interface Ledger {
  balance (userId: string): Promise<number>
  apply (userId: string, delta: number, fence: number | undefined): Promise<LedgerResult>
}

export function createMemoryLedger (): Ledger {
  const balances = new Map<string, number>()
  const fences = new Map<string, number>()
  return {
    async balance (userId) { return balances.get(userId) ?? 0 },
    async apply (userId, delta, fence) {
      const balance = balances.get(userId) ?? 0
      if (fence !== undefined && fence < (fences.get(userId) ?? 0)) return { status: 'stale_fence', balance }
      if (balance + delta < 0) return { status: 'insufficient', balance }
      if (fence !== undefined) fences.set(userId, fence)
      balances.set(userId, balance + delta)
      return { status: 'ok', balance: balance + delta }
    }
  }
}

// Fence check, funds check and update in one atomic step.
const APPLY_LUA = `
local fence = tonumber(ARGV[2])
local balance = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence and fence < tonumber(redis.call('GET', KEYS[2]) or '0') then return {-2, balance} end
local delta = tonumber(ARGV[1])
if balance + delta < 0 then return {-1, balance} end
if fence then redis.call('SET', KEYS[2], fence) end
return {1, redis.call('INCRBY', KEYS[1], delta)}
`
const STATUS = { 1: 'ok', [-1]: 'insufficient', [-2]: 'stale_fence' } as const

type LedgerRedis = RedisClient & { stubLedgerApply (balanceKey: string, fenceKey: string, delta: number, fence: string): Promise<[1 | -1 | -2, number]> }

export function createRedisLedger (redis: RedisClient): Ledger {
  if (!('stubLedgerApply' in redis)) redis.defineCommand('stubLedgerApply', { numberOfKeys: 2, lua: APPLY_LUA })
  const client = redis as LedgerRedis
  return {
    async balance (userId) { return Number(await redis.get(keys.balance(userId)) ?? 0) },
    async apply (userId, delta, fence) {
      const [code, balance] = await client.stubLedgerApply(keys.balance(userId), keys.userFence(userId), delta, fence === undefined ? '' : String(fence))
      return { status: STATUS[code], balance: Number(balance) }
    }
  }
}
