import type { RedisClient } from '../redis-client.js'
import type { BucketSettings } from '../token-bucket.js'
import { createMemoryBucketStore, createRedisBucketStore, type BucketStore, type Clock } from './bucket-store.js'
import { createMemoryLockStore, createRedisLockStore, type LockStore } from './lock-store.js'
import { createMemoryKeyStore, createRedisKeyStore, type KeyStore } from './key-store.js'
import { createMemoryLeaseStore, createRedisLeaseStore, type LeaseStore } from './lease-store.js'

// The only place that picks memory or Redis; plugins take whatever store these return.
export function createBucketStore (redis: RedisClient | undefined, settings: BucketSettings, now?: Clock): BucketStore {
  return redis ? createRedisBucketStore(redis, settings, now) : createMemoryBucketStore(settings, now)
}

export function createLockStore (redis: RedisClient | undefined): LockStore {
  return redis ? createRedisLockStore(redis) : createMemoryLockStore()
}

// --- agents (keys and parallel-request leases)
export function createKeyStore (redis: RedisClient | undefined, file?: string): KeyStore {
  return redis ? createRedisKeyStore(redis) : createMemoryKeyStore(file)
}

export function createLeaseStore (redis: RedisClient | undefined): LeaseStore {
  return redis ? createRedisLeaseStore(redis) : createMemoryLeaseStore()
}
