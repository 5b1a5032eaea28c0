// Token-bucket arithmetic shared by the memory store and mirrored line for line by the Redis Lua script.
// Tokens are kept as integer millitokens so Lua and JavaScript compute identical results.

export const MILLI = 1000

export interface BucketSettings {
  capacity: number // tokens
  refillPerSecond: number // tokens per second
}

export interface BucketState { milli: number, updatedAt: number }

export interface BucketDecision {
  allowed: boolean
  remaining: number // whole tokens left after this request
  retryAfterMs: number // 0 when allowed; otherwise when `cost` tokens will be back
  fullInMs: number // until the bucket is full again
}

/** Millitokens gained per elapsed millisecond (1 token/s = 1 millitoken/ms). */
export const milliPerMs = (s: BucketSettings) => s.refillPerSecond

export function refill (state: BucketState | undefined, now: number, s: BucketSettings): BucketState {
  const capacityMilli = s.capacity * MILLI
  if (!state) return { milli: capacityMilli, updatedAt: now }
  const elapsed = Math.max(0, now - state.updatedAt)
  return {
    milli: Math.min(capacityMilli, state.milli + Math.floor(elapsed * milliPerMs(s))),
    updatedAt: Math.max(state.updatedAt, now)
  }
}

export function decide (milliAfter: number, allowed: boolean, costMilli: number, s: BucketSettings): BucketDecision {
  const rate = milliPerMs(s)
  const missing = allowed ? 0 : costMilli - milliAfter
  return {
    allowed,
    remaining: Math.floor(milliAfter / MILLI),
    retryAfterMs: missing > 0 ? Math.ceil(missing / rate) : 0,
    fullInMs: Math.ceil((s.capacity * MILLI - milliAfter) / rate)
  }
}

/** Refill then try to take `cost` tokens; returns the new state and the decision. */
export function consume (state: BucketState | undefined, cost: number, now: number, s: BucketSettings): { state: BucketState, decision: BucketDecision } {
  const next = refill(state, now, s)
  const costMilli = cost * MILLI
  const allowed = cost > 0 && next.milli >= costMilli
  if (allowed) next.milli -= costMilli
  return { state: next, decision: decide(next.milli, allowed, costMilli, s) }
}
