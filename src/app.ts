import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyRequest, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { upstreamUrls, type GatewayConfig } from './config.js'
import { parseAgentTiers } from './lib/agent-tiers.js'
import { keysPepper } from './lib/agent-keys.js'
import { installErrorHandlers, refuseAmbiguousHeaders } from './error-handler.js'
import type { Clock } from './lib/stores/bucket-store.js'
import metrics from '../plugins/metrics.js'
import auditLog from '../plugins/audit-log.js'
import redis from '../plugins/redis.js'
import authentication from '../plugins/authentication.js'
import agentKeys from '../plugins/agent-keys.js'
import rateLimit from '../plugins/rate-limit.js'
import headers from '../plugins/headers.js'
import agentQuota from '../plugins/agent-quota.js'
import upstreams from '../plugins/upstreams.js'
import circuitBreakers from '../plugins/circuit-breakers.js'
import userLocks from '../plugins/user-locks.js'
import proxy from '../plugins/proxy.js'
import agentUsage from '../plugins/agent-usage.js'
import healthRoutes from '../routes/health/index.js'
import authRoutes from '../routes/auth/index.js'
import userRoutes from '../routes/users/index.js'
import orderRoutes from '../routes/orders/index.js'
import apiRoutes from '../routes/api/index.js'
import chatCompletionRoutes from '../routes/api/chat-completions.js'
import adminRoutes from '../routes/admin/index.js'

export interface GatewayOverrides {
  logger?: FastifyServerOptions['logger']
  /** Agent-quota clock, for tests that step time. */
  quotaClock?: Clock
}

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/

/** Builds the gateway without listening: tests call inject() or listen() on it. */
export async function buildGateway (config: GatewayConfig, overrides: GatewayOverrides = {}) {
  const app = Fastify({
    logger: overrides.logger ?? {
      level: config.LOG_LEVEL,
      redact: ['req.headers.authorization', 'body.password'],
      // Fastify's request serializer without the query string: a client may put a token there (`?access_token=`).
      serializers: {
        req: (req) => {
          const request = req as unknown as FastifyRequest
          return { method: request.method, url: request.url.split('?')[0], host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort }
        }
      }
    },
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: config.TRUST_PROXY,
    // A caller's x-request-id is kept when it is sane, so one id follows the request through every hop.
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    // Node's own check answers a missing Host with a bare 400; refuseAmbiguousHeaders answers it in JSON.
    http: { requireHostHeader: false }
  }).withTypeProvider<TypeBoxTypeProvider>()

  installErrorHandlers(app)
  app.addHook('onRequest', refuseAmbiguousHeaders)
  await app.register(swagger, { openapi: { info: { title: 'gateway', version: '0.1.0' } } })

  // Plugins in dependency order; each declares what it needs, so a wrong order fails at start.
  await app.register(metrics, { token: config.METRICS_TOKEN })
  await app.register(auditLog, { path: config.AUDIT_LOG_PATH })
  await app.register(authentication, { secret: config.JWT_SECRET })
  await app.register(redis, {
    url: config.REDIS_URL,
    clusterNodes: config.REDIS_CLUSTER_NODES,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS
  })
  await app.register(agentKeys, {
    mode: config.AGENT_AUTH,
    tiers: parseAgentTiers(config),
    pepper: keysPepper(config),
    cacheMs: config.AGENT_KEY_CACHE_MS,
    leaseTtlMs: config.AGENT_LEASE_TTL_MS,
    keysFile: config.AGENT_KEYS_FILE,
    adminToken: config.ADMIN_TOKEN
  })
  await app.register(rateLimit, {
    max: config.RATE_LIMIT_MAX,
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    keyBy: config.RATE_LIMIT_KEY,
    loginMax: config.RATE_LIMIT_LOGIN_MAX,
    loginWindowMs: config.RATE_LIMIT_LOGIN_WINDOW_MS,
    demoMax: config.RATE_LIMIT_DEMO_MAX,
    demoWindowMs: config.RATE_LIMIT_DEMO_WINDOW_MS,
    failOpen: config.RATE_LIMIT_ON_REDIS_ERROR === 'open'
  })
  await app.register(headers, { rateLimitHeaders: config.RATE_LIMIT_HEADERS, defaultWindowMs: config.RATE_LIMIT_WINDOW_MS })
  await app.register(agentQuota, { now: overrides.quotaClock })
  const urls = upstreamUrls(config)
  await app.register(upstreams, {
    connections: config.UPSTREAM_CONNECTIONS,
    targets: {
      auth: { url: urls.auth, timeoutMs: config.AUTH_TIMEOUT_MS },
      user: { url: urls.user, timeoutMs: config.USER_TIMEOUT_MS },
      order: { url: urls.order, timeoutMs: config.ORDER_TIMEOUT_MS },
      model: { url: urls.model, timeoutMs: config.MODEL_TIMEOUT_MS }
    }
  })
  await app.register(circuitBreakers, {
    failureThreshold: config.BREAKER_FAILURE_THRESHOLD,
    successThreshold: config.BREAKER_SUCCESS_THRESHOLD,
    resetTimeoutMs: config.BREAKER_RESET_TIMEOUT_MS
  })
  await app.register(userLocks, { ttlMs: config.LOCK_TTL_MS })
  await app.register(proxy)
  await app.register(agentUsage)

  await app.register(healthRoutes, { prefix: '/health' })
  await app.register(authRoutes, { prefix: '/auth' })
  await app.register(userRoutes, { prefix: '/users' })
  await app.register(orderRoutes, { prefix: '/orders' })
  await app.register(apiRoutes, { prefix: '/api' })
  await app.register(chatCompletionRoutes, { prefix: '/api' })
  if (config.ADMIN_TOKEN !== undefined) await app.register(adminRoutes, { prefix: '/admin' })
  app.get('/openapi.json', { config: { rateLimit: false }, schema: { hide: true } }, async () => app.swagger())
  return app
}

export type Gateway = Awaited<ReturnType<typeof buildGateway>>
