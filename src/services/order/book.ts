import type { RedisClient } from '../../lib/redis-client.js'
import { keys } from '../../lib/keys.js'

export interface Order {
  orderId: string
  userId: string
  item: string
  quantity: number
  unitPrice: number
  total: number
  createdAt: string
}

/** Orders are never deleted. A create carrying a fencing token older than the user's last accepted one is refused. */
export interface OrderBook {
  create (order: Order, fence: number | undefined): Promise<'created' | 'stale_fence'>
  get (orderId: string): Promise<Order | undefined>
  listByUser (userId: string): Promise<Order[]>
}

export function createMemoryOrderBook (): OrderBook {
  const orders = new Map<string, Order>()
  const byUser = new Map<string, string[]>()
  const fences = new Map<string, number>()
  return {
    async create (order, fence) {
      if (fence !== undefined && fence < (fences.get(order.userId) ?? 0)) return 'stale_fence'
      if (fence !== undefined) fences.set(order.userId, fence)
      orders.set(order.orderId, order)
      byUser.set(order.userId, [...byUser.get(order.userId) ?? [], order.orderId])
      return 'created'
    },
    async get (orderId) { return orders.get(orderId) },
    async listByUser (userId) { return (byUser.get(userId) ?? []).map((id) => orders.get(id)!) }
  }
}

// Fence check and both writes in one step (the stubs use a plain Redis, not a Cluster).
const CREATE_LUA = `
local fence = tonumber(ARGV[3])
if fence and fence < tonumber(redis.call('GET', KEYS[3]) or '0') then return 0 end
if fence then redis.call('SET', KEYS[3], fence) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
`

type BookRedis = RedisClient & { stubOrderCreate (orderKey: string, listKey: string, fenceKey: string, json: string, orderId: string, fence: string): Promise<number> }

export function createRedisOrderBook (redis: RedisClient): OrderBook {
  if (!('stubOrderCreate' in redis)) redis.defineCommand('stubOrderCreate', { numberOfKeys: 3, lua: CREATE_LUA })
  const client = redis as BookRedis
  const get = async (orderId: string) => {
    const json = await redis.get(keys.order(orderId))
    return json ? JSON.parse(json) as Order : undefined
  }
  return {
    async create (order, fence) {
      const created = await client.stubOrderCreate(keys.order(order.orderId), keys.userOrders(order.userId), keys.orderFence(order.userId),
        JSON.stringify(order), order.orderId, fence === undefined ? '' : String(fence))
      return created === 1 ? 'created' : 'stale_fence'
    },
    get,
    async listByUser (userId) {
      const ids = await redis.lrange(keys.userOrders(userId), 0, -1)
      return (await Promise.all(ids.map(get))).filter((o): o is Order => o !== undefined)
    }
  }
}
