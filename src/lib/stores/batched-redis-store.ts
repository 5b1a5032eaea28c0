import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'

type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1]
type ChildOptions = Parameters<FastifyRateLimitStore['child']>[0]

// @fastify/rate-limit's RedisStore script (continueExceeding and exponentialBackoff off), looped over every key of
// the batch in one atomic call: INCR, start the window on the first hit, else report the window's time left.
const INCR_BATCH_LUA = `
local out = {}
for i = 1, #KEYS do
  local current = redis.call('INCR', KEYS[i])
  local ttl = tonumber(ARGV[i])
  if current == 1 then redis.call('PEXPIRE', KEYS[i], ttl) else ttl = redis.call('PTTL', KEYS[i]) end
  out[2 * i - 1] = current
  out[2 * i] = ttl
end
return out
`

/** Keys per script call; bounds how long one call holds Redis. */
const MAX_BATCH = 256

interface Pending { keys: string[], windows: number[], callbacks: IncrCallback[] }

type BatchRedis = Redis & {
  gatewayRateLimitBatch (numKeys: number, ...keysWindowsCallback: [...Array<string | number>, (err: Error | null | undefined, reply?: number[]) => void]): Promise<number[]>
}

/**
 * Counts every request of one event-loop turn with one script call instead of one EVALSHA each: the same counters,
 * keys and answers as @fastify/rate-limit's RedisStore, at a fraction of ioredis' per-command cost, which was most of
 * what Redis mode costs over embedded mode (docs/PERFORMANCE.md). Hand-written because no maintained store batches.
 * Single-node Redis only: a Cluster rejects a script whose keys sit in several slots.
 */
export class BatchedRedisStore implements FastifyRateLimitStore {
  constructor (private readonly redis: Redis, private readonly prefix: string, private readonly batcher = new Batcher(redis as BatchRedis)) {
    if (!('gatewayRateLimitBatch' in redis)) redis.defineCommand('gatewayRateLimitBatch', { lua: INCR_BATCH_LUA })
  }

  incr (key: string, cb: IncrCallback, timeWindow: number): void {
    this.batcher.add(this.prefix + key, timeWindow, cb)
  }

  child (routeOptions: ChildOptions): FastifyRateLimitStore {
    // The key layout of RedisStore.child, so counters stay where dashboards, tests and older instances expect them.
    const { routeInfo } = routeOptions as ChildOptions & { routeInfo: { method: string, url: string } }
    return new BatchedRedisStore(this.redis, `${this.prefix}${routeInfo.method}${routeInfo.url}-`, this.batcher)
  }
}

/** Collects the increments of one event-loop turn (setImmediate runs after every socket read of the turn). */
class Batcher {
  private pending: Pending | undefined

  constructor (private readonly redis: BatchRedis) {}

  add (key: string, window: number, cb: IncrCallback): void {
    let batch = this.pending
    if (batch === undefined) {
      batch = this.pending = { keys: [], windows: [], callbacks: [] }
      setImmediate(() => this.flush(batch!))
    }
    batch.keys.push(key)
    batch.windows.push(window)
    batch.callbacks.push(cb)
    if (batch.keys.length >= MAX_BATCH) this.pending = undefined
  }

  private flush (batch: Pending): void {
    if (this.pending === batch) this.pending = undefined
    const { keys, windows, callbacks } = batch
    this.redis.gatewayRateLimitBatch(keys.length, ...keys, ...windows, (err, reply) => {
      if (err || !reply) {
        const error = err ?? new Error('rate limit script returned nothing')
        for (const cb of callbacks) cb(error)
        return
      }
      for (let i = 0; i < callbacks.length; i++) callbacks[i](null, { current: reply[2 * i], ttl: reply[2 * i + 1] })
    })
  }
}
