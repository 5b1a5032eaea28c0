import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import RedisStore from '@fastify/rate-limit/store/RedisStore.js'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import { BatchedRedisStore } from '../src/lib/stores/batched-redis-store.js'
import { createRedisClient, waitForRedis } from '../src/lib/redis-client.js'
import { redisFor } from './helper.js'

type Counted = { current: number, ttl: number }
const WINDOW_MS = 60_000

function incr (store: FastifyRateLimitStore, key: string): Promise<Counted> {
  return new Promise((resolve, reject) => store.incr(key, (err, result) => err ? reject(err) : resolve(result!), WINDOW_MS, 100))
}

async function clientFor (t: Test, url: string): Promise<Redis> {
  const client = createRedisClient({ url, connectTimeoutMs: 500, commandTimeoutMs: 500 }) as Redis
  t.teardown(() => client.disconnect())
  await waitForRedis(client, 5000)
  return client
}

async function scriptCalls (client: Redis): Promise<number> {
  const stats = await client.info('commandstats')
  return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
}

const child = (store: FastifyRateLimitStore) => store.child({ routeInfo: { method: 'GET', url: '/api/x' } } as never)

t.test('same counters and answers as @fastify/rate-limit RedisStore, one script call per event-loop turn', async (t) => {
  const redis = await redisFor(t)
  const client = await clientFor(t, redis.url)
  const batched = new BatchedRedisStore(client, 'batched:')
  const stock = new RedisStore(false, false, client, 'stock:') as unknown as FastifyRateLimitStore
  // 300 keys, each hit twice in the same turn, plus a child store's keys: 700 increments.
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`)
  await incr(batched, 'warm-up') // loads the script, so every call below is one EVALSHA
  const before = await scriptCalls(client)
  const batchedResults = await Promise.all([...keys, ...keys].map((key) => incr(batched, key)).concat(keys.slice(0, 100).map((key) => incr(child(batched), key))))
  const calls = await scriptCalls(client) - before
  const stockResults = await Promise.all([...keys, ...keys].map((key) => incr(stock, key)).concat(keys.slice(0, 100).map((key) => incr(child(stock), key))))

  t.same(batchedResults.map((r) => r.current), stockResults.map((r) => r.current), 'every increment counted as RedisStore counts it')
  t.ok(batchedResults.slice(0, 300).every((r) => r.current === 1 && r.ttl === WINDOW_MS), 'first hit opens the window')
  t.ok(batchedResults.slice(300, 600).every((r) => r.current === 2 && r.ttl > 0 && r.ttl <= WINDOW_MS), 'second hit in the same batch sees the count and the time left')
  t.equal(await client.get('batched:k299'), '2', 'the counter in Redis')
  t.equal(await client.get('batched:GET/api/x-k99'), '1', 'a route child keeps RedisStore.child\'s key layout')
  t.ok(await client.pttl('batched:k0') > 0, 'every key expires')
  t.ok(calls <= Math.ceil(700 / 256), `700 increments in ${calls} script calls (at most ${Math.ceil(700 / 256)})`)
})

t.test('Redis gone: every request of the batch gets the error, within the command timeout', async (t) => {
  const redis = await redisFor(t)
  const client = await clientFor(t, redis.url)
  const store = new BatchedRedisStore(client, 'gone:')
  await incr(store, 'warm')
  await redis.kill('SIGKILL')
  const started = performance.now()
  const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => incr(store, `k${i}`)))
  t.equal(outcomes.filter((o) => o.status === 'rejected').length, 20, 'all 20 rejected, none answered with a made-up count')
  t.ok(performance.now() - started < 2000, 'within the bound (no offline queue)')
})
