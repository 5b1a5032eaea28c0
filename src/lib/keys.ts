// Redis key builders. The `{…}` hash tag keeps every key one script touches in one Cluster slot.
export const keys = {
  rateLimitPrefix: 'gw:rl:',
  bucket: (agentId: string) => `gw:bucket:{${agentId}}`,
  settlement: (agentId: string, settlementId: string) => `gw:bucket:{${agentId}}:settled:${settlementId}`,
  lock: (userId: string) => `gw:lock:{${userId}}`,
  agentKey: (keyId: string) => `gw:agentkey:{${keyId}}`,
  agentKeyIndex: (agentId: string) => `gw:agentkeys:{${agentId}}`,
  agentLeases: (agentId: string) => `gw:leases:{${agentId}}`,
  fence: (userId: string) => `gw:fence:{${userId}}`,
  authUser: (username: string) => `stub:auth:user:{${username}}`,
  balance: (userId: string) => `stub:user:{${userId}}:balance`,
  userFence: (userId: string) => `stub:user:{${userId}}:fence`,
  order: (orderId: string) => `stub:order:{${orderId}}`,
  userOrders: (userId: string) => `stub:orders:{${userId}}`,
  orderFence: (userId: string) => `stub:orders:{${userId}}:fence`
}

/** Ids that may appear in URLs and keys: short, no separators, no control characters. */
export const ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
