import t from 'tap'
import fc from 'fast-check'
import { createMemoryBucketStore, createRedisBucketStore, type BucketStore, type Clock } from '../src/lib/stores/bucket-store.js'
import { createRedisClient, waitForRedis } from '../src/lib/redis-client.js'
import type { BucketDecision, BucketSettings } from '../src/lib/token-bucket.js'
import { redisFor } from './helper.js'

/**
 * The reference model: a bucket that holds an exact rational number of tokens (BigInt millionths, no rounding
 * anywhere), gains `refillPerSecond` continuously for the time since the latest instant it has seen (a clock that
 * steps back gains nothing until it passes that instant again), and is capped at its capacity. Waits are found by
 * search over whole milliseconds, not by a formula, so the model shares no arithmetic with the implementation.
 */
class ReferenceBucket {
  private readonly capacity: bigint
  private readonly perMs: bigint // millionths of a token per millisecond = refillPerSecond × 1000
  private tokens: bigint
  private latest: number | undefined

  constructor (settings: BucketSettings) {
    this.capacity = BigInt(settings.capacity) * 1_000_000n
    this.perMs = BigInt(Math.round(settings.refillPerSecond * 1000))
    this.tokens = this.capacity
  }

  private at (now: number): bigint {
    if (this.latest === undefined || now <= this.latest) return this.tokens
    const grown = this.tokens + BigInt(now - this.latest) * this.perMs
    return grown < this.capacity ? grown : this.capacity
  }

  private advance (now: number) {
    this.tokens = this.at(now)
    this.latest = this.latest === undefined ? now : Math.max(this.latest, now)
  }

  /** The least whole number of milliseconds after `now` at which the bucket holds `want`. */
  private waitFor (now: number, want: bigint): number {
    if (this.at(now) >= want) return 0
    let low = 0
    let high = 1
    while (this.at(now + high) < want) high *= 2
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2)
      if (this.at(now + mid) >= want) high = mid
      else low = mid
    }
    return high
  }

  private view (now: number, allowed: boolean, cost: number): BucketDecision {
    return {
      allowed,
      remaining: Number(this.tokens / 1_000_000n),
      retryAfterMs: allowed ? 0 : this.waitFor(now, BigInt(cost) * 1_000_000n),
      fullInMs: this.waitFor(now, this.capacity)
    }
  }

  consume (now: number, cost: number): BucketDecision {
    this.advance(now)
    const allowed = this.tokens >= BigInt(cost) * 1_000_000n
    if (allowed) this.tokens -= BigInt(cost) * 1_000_000n
    return this.view(now, allowed, cost)
  }

  peek (now: number): BucketDecision {
    const saved = { tokens: this.tokens, latest: this.latest }
    this.advance(now)
    const decision = this.view(now, true, 0)
    // Reading the quota changes nothing, not even the latest instant seen.
    this.tokens = saved.tokens
    this.latest = saved.latest
    return decision
  }
}

type Op =
  | { kind: 'consume', cost: number }
  | { kind: 'peek' }
  | { kind: 'step', ms: number }
  | { kind: 'waitRetry', offset: -1 | 0 } // step the clock by the last Retry-After (or 1 ms less)

const settingsArb = fc.record({
  capacity: fc.integer({ min: 1, max: 40 }),
  // Multiples of 0.001 token/s, from one token in 1000 s to 2000 tokens/s, fractional rates included.
  refillPerSecond: fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 2_000_000 })).map((k) => k / 1000)
})

const opsArb = (capacity: number) => fc.array(fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: capacity }).map((cost): Op => ({ kind: 'consume', cost })) },
  { weight: 1, arbitrary: fc.constant<Op>({ kind: 'peek' }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 3 }).map((ms): Op => ({ kind: 'step', ms })) },
  { weight: 2, arbitrary: fc.integer({ min: -5000, max: 20_000 }).map((ms): Op => ({ kind: 'step', ms })) },
  { weight: 2, arbitrary: fc.constantFrom<Op>({ kind: 'waitRetry', offset: 0 }, { kind: 'waitRetry', offset: -1 }) }
), { minLength: 1, maxLength: 40 })

const scenarioArb = settingsArb.chain((settings) => fc.record({
  settings: fc.constant(settings),
  start: fc.integer({ min: 1_000_000, max: 2_000_000_000_000 }),
  ops: opsArb(settings.capacity)
}))

/** Replays `ops` on the store and the model with one stepped clock; every answer must be equal. */
async function agrees (makeStore: (settings: BucketSettings, now: Clock) => BucketStore, agentId: string, scenario: { settings: BucketSettings, start: number, ops: Op[] }) {
  let clock = scenario.start
  const store = makeStore(scenario.settings, () => clock)
  const model = new ReferenceBucket(scenario.settings)
  let lastRetry = 0
  for (const [i, op] of scenario.ops.entries()) {
    if (op.kind === 'step') { clock += op.ms; continue }
    if (op.kind === 'waitRetry') { clock += Math.max(0, lastRetry + op.offset); continue }
    const actual = op.kind === 'consume' ? await store.consume(agentId, op.cost) : await store.peek(agentId)
    const expected = op.kind === 'consume' ? model.consume(clock, op.cost) : model.peek(clock)
    if (expected.retryAfterMs > 0) lastRetry = expected.retryAfterMs
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      throw new Error(`op ${i} ${JSON.stringify(op)} at clock ${clock}: store ${JSON.stringify(actual)}, model ${JSON.stringify(expected)}`)
    }
  }
}

t.test('the model itself: Retry-After is exact, a full bucket reads as full', async (t) => {
  const model = new ReferenceBucket({ capacity: 10, refillPerSecond: 2.5 })
  t.same(model.consume(0, 10), { allowed: true, remaining: 0, retryAfterMs: 0, fullInMs: 4000 })
  t.same(model.consume(0, 3), { allowed: false, remaining: 0, retryAfterMs: 1200, fullInMs: 4000 })
  t.same(model.consume(1199, 3), { allowed: false, remaining: 2, retryAfterMs: 1, fullInMs: 2801 })
  t.same(model.consume(1200, 3), { allowed: true, remaining: 0, retryAfterMs: 0, fullInMs: 4000 })
  t.same(model.consume(200, 1), { allowed: false, remaining: 0, retryAfterMs: 1400, fullInMs: 5000 }, 'a clock 1 s behind waits that second too')
})

t.test('memory store matches the reference model', async (t) => {
  let run = 0
  await fc.assert(fc.asyncProperty(scenarioArb, (scenario) =>
    agrees((settings, now) => createMemoryBucketStore(settings, now), `agent_${run++}`, scenario)), { numRuns: 1500 })
  t.equal(run, 1500, 'every run agreed with the model')
})

t.test('Redis store (Lua, injected clock) matches the reference model', async (t) => {
  const redis = await redisFor(t)
  const client = createRedisClient({ url: redis.url, connectTimeoutMs: 1000, commandTimeoutMs: 2000 })!
  t.teardown(() => client.quit())
  await waitForRedis(client, 3000)
  let run = 0
  await fc.assert(fc.asyncProperty(scenarioArb, (scenario) =>
    agrees((settings, now) => createRedisBucketStore(client, settings, now), `agent_${run++}`, scenario)), { numRuns: 400 })
  t.equal(run, 400, 'every run agreed with the model')
})

t.test('rates that units cannot hold exactly are refused at start, not rounded', async (t) => {
  t.throws(() => createMemoryBucketStore({ capacity: 10, refillPerSecond: 0.0005 }), /refill rate 0.0005 tokens\/s must be a positive multiple of 0.001/)
  t.throws(() => createMemoryBucketStore({ capacity: 10, refillPerSecond: 1.0001 }), /must be a positive multiple of 0.001/)
  t.doesNotThrow(() => createMemoryBucketStore({ capacity: 10, refillPerSecond: 0.3 }), '0.3 is 300 units per ms')
})
