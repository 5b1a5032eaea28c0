import type { FastifyRateLimitStore } from '@fastify/rate-limit'

type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1]
type ChildOptions = Parameters<FastifyRateLimitStore['child']>[0]

/** Keys remembered over their limit, per limiter; a full map caches nothing more until its entries expire. */
const MAX_KEYS = 50_000

/**
 * A fixed window's count only grows until the window resets, so once the store answers "over the limit, resets in
 * ttl", the key stays over until then: later requests of that key are refused from this map, without a store round
 * trip. The reset time is taken from when the request was sent (before the store read its TTL), so the cache always
 * expires at or before the store's window does and never refuses a request the store would admit. Refusals it answers
 * are not counted in the store: the count past the limit is never read (continueExceeding is off).
 */
export class OverLimitCache implements FastifyRateLimitStore {
  private readonly until = new Map<string, number>()

  constructor (private readonly store: FastifyRateLimitStore, private readonly now: () => number = Date.now) {}

  /** True while `key` is known over its limit: its next request will be refused from here, without the store. */
  knowsOver (key: string): boolean {
    const until = this.until.get(key)
    return until !== undefined && until > this.now()
  }

  incr (key: string, cb: IncrCallback, timeWindow: number, max: number): void {
    const until = this.until.get(key)
    if (until !== undefined) {
      const ttl = until - this.now()
      if (ttl > 0) return cb(null, { current: max + 1, ttl })
      this.until.delete(key)
    }
    const sentAt = this.now()
    this.store.incr(key, (err, result) => {
      if (!err && result !== undefined && result.current > max && result.ttl > 0) this.remember(key, sentAt + result.ttl)
      cb(err, result)
    }, timeWindow, max)
  }

  private remember (key: string, until: number): void {
    if (this.until.size >= MAX_KEYS) {
      const now = this.now()
      for (const [k, t] of this.until) if (t <= now) this.until.delete(k)
      if (this.until.size >= MAX_KEYS) return
    }
    this.until.set(key, until)
  }

  child (routeOptions: ChildOptions): FastifyRateLimitStore {
    return new OverLimitCache(this.store.child(routeOptions), this.now)
  }
}
