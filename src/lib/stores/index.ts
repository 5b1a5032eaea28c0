import type { RedisClient } from '../redis-client.js'
import type { BucketSettings } from '../token-bucket.js'
import { createMemoryBucketStore, createRedisBucketStore, type BucketStore, type Clock } from './bucket-store.js'
import { createMemoryLockStore, createRedisLockStore, type LockStore } from './lock-store.js'

// The only place that picks memory or Redis; plugins take whatever store these return.
export function createBucketStore (redis: RedisClient | undefined, settings: BucketSettings, now?: Clock): BucketStore {
  return redis ? createRedisBucketStore(redis, settings, now) : createMemoryBucketStore(settings, now)
}

export function createLockStore (redis: RedisClient | undefined): LockStore {
  return redis ? createRedisLockStore(redis) : createMemoryLockStore()
}
