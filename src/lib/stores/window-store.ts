import type { FastifyRateLimitStore } from '@fastify/rate-limit'

type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1]

interface Count { current: number, resetAt: number }

/**
 * The in-memory rate-limit store. Not @fastify/rate-limit's LocalStore: that one is an LRU of a fixed number of keys,
 * so a client that fills it with other keys (other usernames at /auth/login) evicts a live counter and resets it
 * (security issue 12, finding 3). Here a counter is never dropped before its window ends: keys live in two
 * generations as long as the longest window; a generation is dropped whole only when every counter in it has
 * expired. O(1) per request, no sweep; memory is the keys seen in two windows, which the per-address ceiling
 * (RATE_LIMIT_IP_MAX, checked before any other key is made) bounds per client address.
 */
export class WindowStore implements FastifyRateLimitStore {
  private current = new Map<string, Count>()
  private previous = new Map<string, Count>()
  private generationStart = Date.now()
  private span = 0

  incr (key: string, cb: IncrCallback, timeWindow: number): void {
    const now = Date.now()
    if (timeWindow > this.span) this.span = timeWindow
    // A counter made in generation g ends before g + 2 spans, when g is dropped.
    if (now - this.generationStart >= this.span) {
      this.previous = now - this.generationStart >= 2 * this.span ? new Map() : this.current
      this.current = new Map()
      this.generationStart = now
    }
    let count = this.current.get(key)
    if (count === undefined) {
      count = this.previous.get(key)
      if (count !== undefined) {
        this.previous.delete(key)
        this.current.set(key, count)
      }
    }
    if (count === undefined || count.resetAt <= now) {
      count = { current: 0, resetAt: now + timeWindow }
      this.current.set(key, count)
    }
    count.current++
    cb(null, { current: count.current, ttl: count.resetAt - now })
  }

  child (): FastifyRateLimitStore {
    return new WindowStore()
  }

  /** Keys held (both generations), for tests that check the bound. */
  get size (): number { return this.current.size + this.previous.size }
}
