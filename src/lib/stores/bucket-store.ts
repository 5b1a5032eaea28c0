import type { RedisClient } from '../redis-client.js'
import { keys } from '../keys.js'
import { consume, decide, MILLI, milliPerMs, refill, type BucketDecision, type BucketSettings, type BucketState } from '../token-bucket.js'

export type Clock = () => number

/** One interface, two stores: the agent-quota plugin never knows which one it has. */
export interface BucketStore {
  consume (agentId: string, cost: number): Promise<BucketDecision>
  peek (agentId: string): Promise<BucketDecision>
}

export function createMemoryBucketStore (settings: BucketSettings, now: Clock = Date.now): BucketStore {
  const buckets = new Map<string, BucketState>()
  const fullAfterMs = Math.ceil(settings.capacity * MILLI / milliPerMs(settings))
  // A full bucket equals an absent one, so idle agents are dropped instead of kept forever.
  function sweep (at: number) {
    if (buckets.size < 10_000) return
    for (const [id, state] of buckets) if (at - state.updatedAt > fullAfterMs) buckets.delete(id)
  }
  return {
    async consume (agentId, cost) {
      const at = now()
      const result = consume(buckets.get(agentId), cost, at, settings)
      buckets.set(agentId, result.state)
      sweep(at)
      return result.decision
    },
    async peek (agentId) {
      const state = refill(buckets.get(agentId), now(), settings)
      return decide(state.milli, true, 0, settings)
    }
  }
}

// Same arithmetic as src/lib/token-bucket.ts, in one atomic step. ARGV[4] empty: use the Redis server clock.
const CONSUME_LUA = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 'm', 'u')
local milli = tonumber(state[1])
local updated = tonumber(state[2])
if milli == nil then
  milli = capacity
  updated = now
end
local elapsed = now - updated
if elapsed < 0 then elapsed = 0 end
milli = math.min(capacity, milli + math.floor(elapsed * rate))
local allowed = 0
if cost > 0 and milli >= cost then
  milli = milli - cost
  allowed = 1
end
if cost > 0 then
  redis.call('HSET', KEYS[1], 'm', milli, 'u', math.max(updated, now))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return {allowed, milli}
`

type BucketRedis = RedisClient & { gatewayBucket (key: string, capacity: number, rate: number, cost: number, now: string, ttl: number): Promise<[number, number]> }

export function createRedisBucketStore (redis: RedisClient, settings: BucketSettings, now?: Clock): BucketStore {
  if (!('gatewayBucket' in redis)) redis.defineCommand('gatewayBucket', { numberOfKeys: 1, lua: CONSUME_LUA })
  const client = redis as BucketRedis
  const capacityMilli = settings.capacity * MILLI
  const ttl = Math.ceil(capacityMilli / milliPerMs(settings)) + 1000
  async function run (agentId: string, cost: number): Promise<BucketDecision> {
    const costMilli = cost * MILLI
    const [allowed, milli] = await client.gatewayBucket(keys.bucket(agentId), capacityMilli, milliPerMs(settings), costMilli, now ? String(now()) : '', ttl)
    return decide(Number(milli), cost === 0 || allowed === 1, costMilli, settings)
  }
  return {
    consume: (agentId, cost) => run(agentId, cost),
    peek: (agentId) => run(agentId, 0)
  }
}
