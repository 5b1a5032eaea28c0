import type { RedisClient } from '../redis-client.js'
import { keys } from '../keys.js'
import { bucketRates, consume, decide, refill, UNITS_PER_TOKEN, type BucketDecision, type BucketSettings, type BucketState } from '../token-bucket.js'

export type Clock = () => number

/** One interface, two stores: the agent-quota plugin never knows which one it has. */
export interface BucketStore {
  consume (agentId: string, cost: number): Promise<BucketDecision>
  peek (agentId: string): Promise<BucketDecision>
}

export function createMemoryBucketStore (settings: BucketSettings, now: Clock = Date.now): BucketStore {
  const rates = bucketRates(settings)
  const buckets = new Map<string, BucketState>()
  const fullAfterMs = Math.ceil(rates.capacityUnits / rates.unitsPerMs)
  // A full bucket equals an absent one, so idle agents are dropped instead of kept forever.
  function sweep (at: number) {
    if (buckets.size < 10_000) return
    for (const [id, state] of buckets) if (at - state.updatedAt > fullAfterMs) buckets.delete(id)
  }
  return {
    async consume (agentId, cost) {
      const at = now()
      const result = consume(buckets.get(agentId), cost, at, rates)
      buckets.set(agentId, result.state)
      sweep(at)
      return result.decision
    },
    async peek (agentId) {
      const at = now()
      const state = refill(buckets.get(agentId), at, rates)
      return decide(state.units, state.updatedAt - at, true, 0, rates)
    }
  }
}

// Same arithmetic as src/lib/token-bucket.ts, in one atomic step. ARGV[4] empty: use the Redis server clock.
// Returns {allowed, units after, lag}: lag > 0 when the clock is behind the latest instant the bucket has seen.
const CONSUME_LUA = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 'n', 'u')
local units = tonumber(state[1])
local updated = tonumber(state[2])
if units == nil or updated == nil then
  units = capacity
  updated = now
end
local elapsed = now - updated
if elapsed < 0 then elapsed = 0 end
units = math.min(capacity, units + elapsed * rate)
if now > updated then updated = now end
local allowed = 0
if cost > 0 and units >= cost then
  units = units - cost
  allowed = 1
end
if cost > 0 then
  redis.call('HSET', KEYS[1], 'n', units, 'u', updated)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return {allowed, units, updated - now}
`

type BucketRedis = RedisClient & { gatewayBucket (key: string, capacityUnits: number, unitsPerMs: number, costUnits: number, now: string, ttl: number): Promise<[number, number, number]> }

export function createRedisBucketStore (redis: RedisClient, settings: BucketSettings, now?: Clock): BucketStore {
  if (!('gatewayBucket' in redis)) redis.defineCommand('gatewayBucket', { numberOfKeys: 1, lua: CONSUME_LUA })
  const client = redis as BucketRedis
  const rates = bucketRates(settings)
  // An absent key reads as a full bucket, so a key may expire once its bucket would be full; the extra minute
  // covers clock steps (and tests' injected clocks, which wall-clock expiry knows nothing about).
  const ttl = Math.ceil(rates.capacityUnits / rates.unitsPerMs) + 60_000
  async function run (agentId: string, cost: number): Promise<BucketDecision> {
    const costUnits = cost * UNITS_PER_TOKEN
    const [allowed, units, lag] = await client.gatewayBucket(keys.bucket(agentId), rates.capacityUnits, rates.unitsPerMs, costUnits, now ? String(now()) : '', ttl)
    return decide(Number(units), Number(lag), cost === 0 || allowed === 1, costUnits, rates)
  }
  return {
    consume: (agentId, cost) => run(agentId, cost),
    peek: (agentId) => run(agentId, 0)
  }
}
