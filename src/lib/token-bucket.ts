// Token-bucket arithmetic shared by the memory store and mirrored line for line by the Redis Lua script.
// Tokens are kept as integer millionths ("units") and the refill as whole units per millisecond, so a refill never
// rounds (no fraction is lost between frequent calls) and Lua and JavaScript compute identical integers.

export const UNITS_PER_TOKEN = 1_000_000

export interface BucketSettings {
  capacity: number // tokens
  refillPerSecond: number // tokens per second, a multiple of 0.001
}

/** The settings in units, computed once at registration. */
export interface BucketRates { capacityUnits: number, unitsPerMs: number }

/** The latest instant the bucket has seen (a clock stepping back never refills twice) and what it held then. */
export interface BucketState { units: number, updatedAt: number }

export interface BucketDecision {
  allowed: boolean
  remaining: number // whole tokens left after this request
  retryAfterMs: number // 0 when allowed; otherwise the least wait until `cost` tokens are back
  fullInMs: number // until the bucket is full again
}

/** Throws when the rate is not a positive multiple of 0.001 token/s (1 token/s = 1000 units/ms). */
export function bucketRates (s: BucketSettings): BucketRates {
  const unitsPerMs = Math.round(s.refillPerSecond * UNITS_PER_TOKEN / 1000)
  if (!(unitsPerMs >= 1) || Math.abs(unitsPerMs - s.refillPerSecond * UNITS_PER_TOKEN / 1000) > 1e-6) {
    throw new Error(`refill rate ${s.refillPerSecond} tokens/s must be a positive multiple of 0.001`)
  }
  if (!Number.isSafeInteger(s.capacity * UNITS_PER_TOKEN)) throw new Error(`capacity ${s.capacity} is too large`)
  return { capacityUnits: s.capacity * UNITS_PER_TOKEN, unitsPerMs }
}

export function refill (state: BucketState | undefined, now: number, r: BucketRates): BucketState {
  if (!state) return { units: r.capacityUnits, updatedAt: now }
  const elapsed = Math.max(0, now - state.updatedAt)
  return {
    units: Math.min(r.capacityUnits, state.units + elapsed * r.unitsPerMs),
    updatedAt: Math.max(state.updatedAt, now)
  }
}

/** `lagMs`: how far the bucket's latest instant is ahead of `now` (a clock stepped back); refill starts there. */
export function decide (units: number, lagMs: number, allowed: boolean, costUnits: number, r: BucketRates): BucketDecision {
  const missing = allowed ? 0 : costUnits - units
  return {
    allowed,
    remaining: Math.floor(units / UNITS_PER_TOKEN),
    retryAfterMs: missing > 0 ? lagMs + Math.ceil(missing / r.unitsPerMs) : 0,
    fullInMs: units < r.capacityUnits ? lagMs + Math.ceil((r.capacityUnits - units) / r.unitsPerMs) : 0
  }
}

/** Refill then try to take `cost` tokens; returns the new state and the decision. */
export function consume (state: BucketState | undefined, cost: number, now: number, r: BucketRates): { state: BucketState, decision: BucketDecision } {
  const next = refill(state, now, r)
  const costUnits = cost * UNITS_PER_TOKEN
  const allowed = cost > 0 && next.units >= costUnits
  if (allowed) next.units -= costUnits
  return { state: next, decision: decide(next.units, next.updatedAt - now, allowed, costUnits, r) }
}

/**
 * Usage-based debit: refill, then give back `reserved − used` tokens (a refund when positive, an overrun when
 * negative). The bucket may go below zero after an overrun; it never goes above capacity.
 */
export function settle (state: BucketState | undefined, reserved: number, used: number, now: number, r: BucketRates): { state: BucketState, decision: BucketDecision } {
  const next = refill(state, now, r)
  next.units = Math.min(r.capacityUnits, next.units + (reserved - used) * UNITS_PER_TOKEN)
  return { state: next, decision: decide(next.units, next.updatedAt - now, true, 0, r) }
}
