import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import RedisStore from '@fastify/rate-limit/store/RedisStore.js'
import { Redis } from 'ioredis'
import type { RedisClient } from '../redis-client.js'
import { BatchedRedisStore } from './batched-redis-store.js'
import { WindowStore } from './window-store.js'
import { OverLimitCache } from './over-limit-cache.js'
import { keys } from '../keys.js'
import { RateLimitUnavailableError } from '../../errors.js'

export interface DegradationListener {
  degraded (err: Error): void
  recovered (): void
}

type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1]
type ChildOptions = Parameters<FastifyRateLimitStore['child']>[0]

/** While degraded, Redis is tried by one request at a time, at most this often; the rest skip it. */
const PROBE_INTERVAL_MS = 250

interface FailoverState { degraded: boolean, probing: boolean, nextProbeAt: number, lastError: Error | undefined }

/**
 * Redis first; when Redis errors, either a per-instance in-memory limiter takes over (fail-open) or the request
 * is refused with 503 (fail-closed). While degraded only a probe now and then goes to Redis, so a Redis that hangs
 * (rather than refuses connections) costs one request the command timeout, not every request; the first probe that
 * succeeds puts the limiter back on Redis by itself.
 */
class FailoverStore implements FastifyRateLimitStore {
  constructor (
    private readonly primary: FastifyRateLimitStore,
    private readonly fallback: FastifyRateLimitStore,
    private readonly failOpen: boolean,
    private readonly state: FailoverState,
    private readonly listener: DegradationListener
  ) {}

  incr (key: string, cb: IncrCallback, timeWindow: number, max: number): void {
    const state = this.state
    if (state.degraded && (state.probing || Date.now() < state.nextProbeAt)) return this.withoutRedis(key, cb, timeWindow, max, state.lastError!)
    const probe = state.degraded
    if (probe) state.probing = true
    this.primary.incr(key, (err, result) => {
      if (probe) state.probing = false
      if (!err) {
        if (state.degraded) {
          state.degraded = false
          this.listener.recovered()
        }
        return cb(null, result)
      }
      state.lastError = err
      state.nextProbeAt = Date.now() + PROBE_INTERVAL_MS
      if (!state.degraded) {
        state.degraded = true
        this.listener.degraded(err)
      }
      this.withoutRedis(key, cb, timeWindow, max, err)
    }, timeWindow, max)
  }

  private withoutRedis (key: string, cb: IncrCallback, timeWindow: number, max: number, err: Error): void {
    if (this.failOpen) return this.fallback.incr(key, cb, timeWindow, max)
    cb(new RateLimitUnavailableError({ cause: err }))
  }

  child (routeOptions: ChildOptions): FastifyRateLimitStore {
    return new FailoverStore(this.primary.child(routeOptions), this.fallback.child(routeOptions), this.failOpen, this.state, this.listener)
  }
}

export interface RateLimitStores {
  Store: FastifyRateLimitStoreCtor
  /** True while the root limiter's key is known over its limit (answered from the over-limit cache, no store call). */
  knowsOver (key: string): boolean
}

export function createRateLimitStore (redis: RedisClient | undefined, failOpen: boolean, listener: DegradationListener): RateLimitStores {
  // @fastify/rate-limit constructs its store once (the root limiter); route limiters are its children.
  let root: OverLimitCache | undefined
  const knowsOver = (key: string) => root?.knowsOver(key) ?? false
  // In memory (and as Redis's fail-open fallback) a counter lives until its window ends; in Redis every counter is a
  // key with a PEXPIRE TTL, which only an eviction policy could drop early (run Redis with maxmemory-policy noeviction).
  // A key over its limit is refused locally until its window resets, in both modes: a flood costs no store call.
  if (!redis) {
    return {
      knowsOver,
      Store: class MemoryStore extends OverLimitCache {
        constructor () {
          super(new WindowStore())
          root ??= this
        }
      } as unknown as FastifyRateLimitStoreCtor
    }
  }
  const state: FailoverState = { degraded: false, probing: false, nextProbeAt: 0, lastError: undefined }
  return {
    knowsOver,
    Store: class RedisFailoverStore extends FailoverStore {
      constructor () {
        // One script call per event-loop turn on a single node; a Cluster gets one call per key (keys span slots).
        const store = redis instanceof Redis ? new BatchedRedisStore(redis, keys.rateLimitPrefix) : new RedisStore(false, false, redis, keys.rateLimitPrefix)
        const primary = new OverLimitCache(store)
        super(primary, new WindowStore(), failOpen, state, listener)
        root ??= primary
      }
    } as unknown as FastifyRateLimitStoreCtor
  }
}
