import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createRedisClient, waitForRedis, type RedisClient, type RedisClientOptions } from '../src/lib/redis-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis client, or undefined in the embedded (in-memory) mode. Store factories take it as is. */
    sharedRedis: RedisClient | undefined
  }
}

export default fp(async function redis (fastify: FastifyInstance, opts: RedisClientOptions) {
  const client = createRedisClient(opts)
  fastify.decorate<RedisClient | undefined>('sharedRedis', client)
  if (!client) return
  client.on('error', (err) => fastify.log.debug({ err }, 'redis client error'))
  // Start even when Redis is down: the limiters fail open or closed by policy and recover by themselves.
  await waitForRedis(client, opts.connectTimeoutMs * 3).catch((err) => fastify.log.warn({ err }, 'starting without Redis'))
  fastify.addHook('onClose', async () => {
    await client.quit().catch(() => client.disconnect())
  })
}, { name: 'redis' })
