import { Cluster, Redis, type RedisOptions } from 'ioredis'

export type RedisClient = Redis | Cluster

export interface RedisClientOptions {
  url?: string
  clusterNodes?: string
  connectTimeoutMs: number
  commandTimeoutMs: number
}

/**
 * Options that make a dead Redis fail fast instead of hanging requests: no offline queue, no per-command
 * retries (a retried INCR could count twice), short connect and command timeouts, and endless reconnects.
 */
function safeOptions (opts: RedisClientOptions): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: opts.connectTimeoutMs,
    commandTimeout: opts.commandTimeoutMs,
    // Off: ioredis builds a Pipeline object per auto-pipelined call; at 1 000 req/s that kept ~1.2 MB alive per
    // scavenge and tripled the pauses (bench/investigate/rate-chunks.mjs). The rate limiter batches by itself.
    enableAutoPipelining: false,
    retryStrategy: (attempt) => Math.min(attempt * 50, 500)
  }
}

/** Returns undefined when neither REDIS_URL nor REDIS_CLUSTER_NODES is set (the embedded default). */
export function createRedisClient (opts: RedisClientOptions): RedisClient | undefined {
  const options = safeOptions(opts)
  if (opts.clusterNodes) {
    const nodes = opts.clusterNodes.split(',').map((hostPort) => {
      const [host, port] = hostPort.split(':')
      return { host, port: Number(port) }
    })
    return new Cluster(nodes, {
      enableOfflineQueue: false,
      // On here, unlike a single node: with it off the limiters' calls failed over to memory (redis-cluster.test.ts).
      enableAutoPipelining: true,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 50, 500),
      // A dead or failing-over master must fail fast too: ioredis would otherwise retry "Connection is closed" and
      // CLUSTERDOWN every 100 ms up to maxRedirections (16) times, holding each request ~1.6 s before the fallback.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // Reconnect to a master that comes back on its address, as the single-node client does.
      clusterNodeRetryStrategy: (attempt) => Math.min(attempt * 50, 500),
      redisOptions: options
    })
  }
  if (opts.url) return new Redis(opts.url, options)
  return undefined
}

/** Resolves when the client is ready, rejects after `timeoutMs` with the client's last error. */
export async function waitForRedis (client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    let lastError: unknown
    const onError = (err: unknown) => { lastError = err }
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      client.off('error', onError)
      reject(new Error(`Redis not ready after ${timeoutMs} ms: ${String(lastError ?? 'no answer')}`))
    }, timeoutMs)
    function onReady () {
      clearTimeout(timer)
      client.off('error', onError)
      resolve()
    }
    client.once('ready', onReady)
    client.on('error', onError)
  })
}
