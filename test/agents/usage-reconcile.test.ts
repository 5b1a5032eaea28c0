// Reservation + reconciliation is exact under concurrency, in memory and in Redis (fast-check model tests):
// 1. the stores alone: reserve/settle/clock-step sequences against a BigInt reference bucket (refill included);
// 2. the whole route: N concurrent chat calls with random max_tokens, prompts and streaming, through a real model
//    stub, and the agent's bucket must end at capacity − Σ usage of the calls that got 200 (clock frozen, so the
//    end state does not depend on the order the gateway served them in).
import t from 'tap'
import fc from 'fast-check'
import { createMemoryBucketStore, createRedisBucketStore, type BucketStore, type Clock } from '../../src/lib/stores/bucket-store.js'
import { createRedisClient, waitForRedis } from '../../src/lib/redis-client.js'
import { keys } from '../../src/lib/keys.js'
import type { BucketDecision, BucketSettings } from '../../src/lib/token-bucket.js'
import { redisFor, sample } from '../helper.js'
import { chat, keyFor, modelFor, predictedUsage, remaining, sseEvents, usageGateway } from './usage-helper.js'

const M = 1_000_000n

/** An exact bucket (BigInt millionths) that may go below zero; waits found by search, not by formula. */
class ReferenceBucket {
  private readonly capacity: bigint
  private readonly perMs: bigint
  private tokens: bigint
  private latest: number | undefined
  constructor (s: BucketSettings) {
    this.capacity = BigInt(s.capacity) * M
    this.perMs = BigInt(Math.round(s.refillPerSecond * 1000))
    this.tokens = this.capacity
  }

  private at (now: number): bigint {
    if (this.latest === undefined || now <= this.latest) return this.tokens
    const grown = this.tokens + BigInt(now - this.latest) * this.perMs
    return grown < this.capacity ? grown : this.capacity
  }

  private advance (now: number) { this.tokens = this.at(now); this.latest = this.latest === undefined ? now : Math.max(this.latest, now) }
  private waitFor (now: number, want: bigint): number {
    let ms = 0
    let step = 1
    while (this.at(now + ms + step) < want) { ms += step; step *= 2 }
    while (this.at(now + ms) < want) { step = Math.max(1, Math.floor(step / 2)); if (this.at(now + ms + step) < want) ms += step; else if (step === 1) { ms += 1; break } }
    return ms
  }

  private view (now: number, allowed: boolean, cost: number): BucketDecision {
    const floor = this.tokens >= 0n ? this.tokens / M : -((-this.tokens + M - 1n) / M)
    return {
      allowed,
      remaining: Number(floor),
      retryAfterMs: allowed ? 0 : this.waitFor(now, BigInt(cost) * M),
      fullInMs: this.waitFor(now, this.capacity)
    }
  }

  reserve (now: number, cost: number): BucketDecision {
    this.advance(now)
    const allowed = this.tokens >= BigInt(cost) * M
    if (allowed) this.tokens -= BigInt(cost) * M
    return this.view(now, allowed, cost)
  }

  settle (now: number, reserved: number, used: number): BucketDecision {
    this.advance(now)
    const next = this.tokens + BigInt(reserved - used) * M
    this.tokens = next < this.capacity ? next : this.capacity
    return this.view(now, true, 0)
  }
}

type Op = { kind: 'call', cost: number, used: number } | { kind: 'step', ms: number }
const scenarioArb = fc.record({
  capacity: fc.integer({ min: 1, max: 60 }),
  refillPerSecond: fc.integer({ min: 1, max: 5000 }).map((k) => k / 1000)
}).chain((settings) => fc.record({
  settings: fc.constant(settings),
  start: fc.integer({ min: 1_000_000, max: 2_000_000_000_000 }),
  ops: fc.array(fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('call' as const), cost: fc.integer({ min: 1, max: settings.capacity }), used: fc.integer({ min: 0, max: 3 * settings.capacity }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('step' as const), ms: fc.integer({ min: -2000, max: 30_000 }) }) }
  ), { minLength: 1, maxLength: 30 })
}))

/** Each `call` reserves; when allowed it is settled with its usage (a refund or an overrun). Every answer must match. */
async function agrees (makeStore: (s: BucketSettings, now: Clock) => BucketStore, agentId: string, scenario: { settings: BucketSettings, start: number, ops: Op[] }) {
  let clock = scenario.start
  const store = makeStore(scenario.settings, () => clock)
  const model = new ReferenceBucket(scenario.settings)
  for (const [i, op] of scenario.ops.entries()) {
    if (op.kind === 'step') { clock += op.ms; continue }
    const pairs: Array<[BucketDecision, BucketDecision]> = [[await store.consume(agentId, op.cost), model.reserve(clock, op.cost)]]
    if (pairs[0][1].allowed) pairs.push([await store.settle(agentId, op.cost, op.used, `s${i}`), model.settle(clock, op.cost, op.used)])
    for (const [actual, expected] of pairs) {
      if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`op ${i} ${JSON.stringify(op)} at ${clock}: store ${JSON.stringify(actual)}, model ${JSON.stringify(expected)}`)
    }
  }
}

t.test('reserve + settle: memory store matches the reference bucket', async (t) => {
  let run = 0
  await fc.assert(fc.asyncProperty(scenarioArb, (s) => agrees((settings, now) => createMemoryBucketStore(settings, now), `a${run++}`, s)), { numRuns: 800 })
  t.equal(run, 800)
})

t.test('reserve + settle: Redis store (Lua) matches the reference bucket', async (t) => {
  const redis = await redisFor(t)
  const client = createRedisClient({ url: redis.url, connectTimeoutMs: 1000, commandTimeoutMs: 2000 })!
  t.teardown(() => client.quit())
  await waitForRedis(client, 3000)
  let run = 0
  await fc.assert(fc.asyncProperty(scenarioArb, (s) => agrees((settings, now) => createRedisBucketStore(client, settings, now), `a${run++}`, s)), { numRuns: 300 })
  t.equal(run, 300)
})

t.test('a retried Redis settlement (same id) is applied once', async (t) => {
  const redis = await redisFor(t)
  const client = createRedisClient({ url: redis.url, connectTimeoutMs: 1000, commandTimeoutMs: 2000 })!
  t.teardown(() => client.quit())
  await waitForRedis(client, 3000)
  const store = createRedisBucketStore(client, { capacity: 100, refillPerSecond: 1 }, () => 5_000_000)
  await store.consume('retry', 40)
  t.equal((await store.settle('retry', 40, 10, 'r1')).remaining, 90, 'first attempt: 30 back')
  t.equal((await store.settle('retry', 40, 10, 'r1')).remaining, 90, 'the retry changes nothing')
  t.equal((await store.peek('retry')).remaining, 90)
  t.equal((await store.settle('retry', 0, 5, 'r2')).remaining, 85, 'another settlement id applies')
})

const TIERS = { small: { capacity: 30, maxTokensPerRequest: 20 }, big: { capacity: 400, maxTokensPerRequest: 50 } }
const callArb = fc.record({
  maxTokens: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
  words: fc.array(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 25 }),
  stream: fc.boolean()
})
const runArb = fc.record({ tier: fc.constantFrom('small' as const, 'big' as const), calls: fc.array(callArb, { minLength: 1, maxLength: 10 }) })

// One model stub process for the file (fewer process starts on a shared machine).
const model = await modelFor(t)

for (const store of ['memory', 'redis'] as const) {
  t.test(`concurrent chat calls: the bucket ends where the model says (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    const { app } = await usageGateway(t, model.url, {
      AGENT_QUOTA_MAX_PARALLEL: '64',
      AGENT_QUOTA_REQUESTS_PER_MINUTE: '100000',
      AGENT_TIERS: JSON.stringify(TIERS),
      ...(redis ? { REDIS_URL: redis.url } : {})
    })
    let run = 0
    const totals = { reserved: 0, debited: 0, refunded: 0, ok: 0, refused: 0 }
    await fc.assert(fc.asyncProperty(runArb, async ({ tier, calls }) => {
      const agentId = `model-${store}-${run++}`
      const key = await keyFor(app, agentId, tier)
      const { capacity, maxTokensPerRequest } = TIERS[tier]
      const bodies = calls.map((c) => ({ model: 'fake', messages: [{ role: 'user', content: c.words.join(' ') }], ...(c.maxTokens === undefined ? {} : { max_tokens: c.maxTokens }), ...(c.stream ? { stream: true } : {}) }))
      const answers = await Promise.all(bodies.map((body) => chat(app, key, body)))
      let used = 0
      for (const [i, res] of answers.entries()) {
        const reserved = calls[i].maxTokens ?? maxTokensPerRequest
        if (res.statusCode === 429) {
          if (res.json().code !== 'GW_QUOTA_EXCEEDED' || !(Number(res.headers['retry-after']) > 0)) throw new Error(`bad 429: ${res.body}`)
          totals.refused++
          continue
        }
        if (res.statusCode !== 200) throw new Error(`call ${i} answered ${res.statusCode}: ${res.body}`)
        const usage = calls[i].stream ? (sseEvents(res.body).at(-2) as Record<string, any>).usage : res.json().usage
        if (usage.total_tokens !== predictedUsage(bodies[i] as never, reserved)) throw new Error(`call ${i}: usage ${usage.total_tokens} is not the stub's`)
        used += usage.total_tokens
        totals.ok++
        totals.reserved += reserved
        totals.debited += usage.total_tokens
        totals.refunded += Math.max(0, reserved - usage.total_tokens)
      }
      const reservedSum = calls.reduce((sum, c) => sum + (c.maxTokens ?? maxTokensPerRequest), 0)
      if (reservedSum <= capacity && answers.some((r: { statusCode: number }) => r.statusCode !== 200)) throw new Error('a call was refused although every reservation fitted')
      const expected = capacity - used
      const actual = await remaining(app, agentId, tier)
      if (actual !== expected) throw new Error(`bucket ${actual}, model ${expected} (capacity ${capacity}, used ${used})`)
      if (redis) {
        const units = await app.sharedRedis!.hget(keys.bucket(agentId), 'n')
        if (Number(units) !== expected * 1_000_000) throw new Error(`Redis holds ${units} units, model ${expected * 1_000_000}`)
      }
    }), { numRuns: 40 })
    t.equal(run, 40, 'every run ended where the model said')
    t.comment(`${totals.ok} calls answered, ${totals.refused} refused (429) over 40 runs`)
    t.ok(totals.refused > 0 && totals.ok > 0, 'the runs covered both refusals and answers')
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    const metric = (name: string) => sample(text, name, { tier: 'small' }) + sample(text, name, { tier: 'big' })
    t.same({ reserved: metric('gateway_agent_tokens_reserved_total'), debited: metric('gateway_agent_tokens_debited_total'), refunded: metric('gateway_agent_tokens_refunded_total') },
      { reserved: totals.reserved, debited: totals.debited, refunded: totals.refunded }, 'the metrics add up to the calls exactly')
  })
}
