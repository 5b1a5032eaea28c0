import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import LocalStore from '@fastify/rate-limit/store/LocalStore.js'
import RedisStore from '@fastify/rate-limit/store/RedisStore.js'
import type { RedisClient } from '../redis-client.js'
import { keys } from '../keys.js'
import { RateLimitUnavailableError } from '../../errors.js'

export interface DegradationListener {
  degraded (err: Error): void
  recovered (): void
}

type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1]
type ChildOptions = Parameters<FastifyRateLimitStore['child']>[0]

/**
 * Redis first; when Redis errors, either a per-instance in-memory limiter takes over (fail-open) or the request
 * is refused with 503 (fail-closed). Every call still tries Redis first, so the limiter returns by itself.
 */
class FailoverStore implements FastifyRateLimitStore {
  constructor (
    private readonly primary: FastifyRateLimitStore,
    private readonly fallback: FastifyRateLimitStore,
    private readonly failOpen: boolean,
    private readonly state: { degraded: boolean },
    private readonly listener: DegradationListener
  ) {}

  incr (key: string, cb: IncrCallback, timeWindow: number, max: number): void {
    this.primary.incr(key, (err, result) => {
      if (!err) {
        if (this.state.degraded) {
          this.state.degraded = false
          this.listener.recovered()
        }
        return cb(null, result)
      }
      if (!this.state.degraded) {
        this.state.degraded = true
        this.listener.degraded(err)
      }
      if (this.failOpen) return this.fallback.incr(key, cb, timeWindow, max)
      cb(new RateLimitUnavailableError({ cause: err }))
    }, timeWindow, max)
  }

  child (routeOptions: ChildOptions): FastifyRateLimitStore {
    return new FailoverStore(this.primary.child(routeOptions), this.fallback.child(routeOptions), this.failOpen, this.state, this.listener)
  }
}

export function createRateLimitStore (redis: RedisClient | undefined, failOpen: boolean, listener: DegradationListener): FastifyRateLimitStoreCtor {
  if (!redis) {
    return class MemoryStore extends LocalStore { constructor () { super(false, false, 20_000) } } as unknown as FastifyRateLimitStoreCtor
  }
  const state = { degraded: false }
  return class RedisFailoverStore extends FailoverStore {
    constructor () {
      super(new RedisStore(false, false, redis, keys.rateLimitPrefix), new LocalStore(false, false, 20_000), failOpen, state, listener)
    }
  } as unknown as FastifyRateLimitStoreCtor
}
