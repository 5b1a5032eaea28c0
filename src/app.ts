// The request pipeline, all of it built here (server.ts only listens, handles signals and exits), in the order it runs.
// Within a phase the app-wide hooks run in registration order, then the route's own (from `config` via onRoute).
//   connection    connections: per-address cap (CONNECTIONS_PER_IP_MAX); Node: REQUEST/HEADERS/KEEP_ALIVE_TIMEOUT_MS;
//                 parser refusals and timeouts → clientErrorHandler; Expect → connections; router 400/414 → frameworkErrors
//   onRequest     refuseAmbiguousHeaders → metrics (timer) → authentication (token → userId) → agent-keys (key →
//                 agent) → rate-limit (the client address is an IP) → headers (request id, security headers) →
//                 connections (in-flight count; 503 while closing) → route: rate-limit (the address ceiling's count
//                 starts; the route's own limit per user, agent or address; the ceiling is read: one Redis call for
//                 both); the login address guard; the /metrics guard
//   preParsing    the body is read (BODY_LIMIT_BYTES); REQUEST_TIMEOUT_MS still runs
//   preValidation TypeBox schemas; authentication (401 without a token)
//   preHandler    authentication (403 not the owner) → route: login limiter (rate-limit), user-locks (acquire);
//                 the not-found handler's rate limiter (404s count against the client)
//   handler       routes/* → proxy → circuit-breakers → upstreams
//   onSend        headers (draft rate-limit fields), connections (Connection: close while closing) → route: user-locks (release)
//   onResponse    metrics → connections (in-flight done, so close waits for every answer's hooks)
//   errors        one setErrorHandler and the not-found handler (src/error-handler.ts); every code in src/errors.ts
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { trustProxyOption, upstreamUrls, type GatewayConfig } from './config.js'
import { gatewayLogger } from './logger.js'
import { clientErrorHandler, frameworkErrors, installErrorHandlers, refuseAmbiguousHeaders } from './error-handler.js'
import { parseAgentTiers } from './lib/agent-tiers.js'
import { keysPepper } from './lib/agent-keys.js'
import type { Clock } from './lib/stores/bucket-store.js'
import metrics from '../plugins/metrics.js'
import auditLog from '../plugins/audit-log.js'
import accessLog from '../plugins/access-log.js'
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
import connections from '../plugins/connections.js'
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
    logger: overrides.logger ?? gatewayLogger(config),
    // Fastify's two lines per request replaced by plugins/access-log.ts's one.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    // A caller's x-request-id is kept when it is sane, so one id follows the request through every hop.
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // plugins/connections answers requests read while closing (503 JSON); Fastify's own 503 has no `code`.
    return503OnClosing: false,
    // Slow clients: the whole request, the headers and the idle time between requests are bounded (408 JSON after).
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    http: {
      // Node's own check answers a missing Host with a bare 400; refuseAmbiguousHeaders answers it in JSON.
      requireHostHeader: false,
      // Node refuses a headers timeout longer than the request timeout.
      headersTimeout: Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS),
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      // Node checks both timeouts on this interval (default 30 s, which would let a 1 s timeout run 31 s).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS) / 4)))
    },
    clientErrorHandler,
    frameworkErrors
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', refuseAmbiguousHeaders)
  await app.register(swagger, { openapi: { info: { title: 'gateway', version: '0.1.0' } } })

  // Plugins in dependency order; each declares what it needs, so a wrong order fails at start.
  await app.register(metrics, { token: config.METRICS_TOKEN })
  await app.register(auditLog, { path: config.AUDIT_LOG_PATH, denialFlushMs: config.AUDIT_DENIAL_FLUSH_MS })
  await app.register(accessLog, { enabled: config.ACCESS_LOG === 'on' })
  await app.register(authentication, { secret: config.JWT_SECRET, ttlSeconds: config.JWT_TTL_SECONDS })
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
    ipMax: config.RATE_LIMIT_IP_MAX ?? 4 * config.RATE_LIMIT_MAX,
    loginIpMax: config.RATE_LIMIT_LOGIN_IP_MAX,
    loginAccountMax: config.RATE_LIMIT_LOGIN_ACCOUNT_MAX,
    failOpen: config.RATE_LIMIT_ON_REDIS_ERROR === 'open'
  })
  // After rate-limit: unknown paths count against the client's limit and the address ceiling as routes do.
  installErrorHandlers(app, { notFoundPreHandler: [app.addressCeiling[0], app.rateLimit(), app.addressCeiling[1]] })
  await app.register(headers, { rateLimitHeaders: config.RATE_LIMIT_HEADERS, defaultWindowMs: config.RATE_LIMIT_WINDOW_MS })
  await app.register(agentQuota, { now: overrides.quotaClock })
  const urls = upstreamUrls(config)
  await app.register(upstreams, {
    connections: config.UPSTREAM_CONNECTIONS,
    maxBodyBytes: config.UPSTREAM_MAX_BODY_BYTES,
    credential: config.STUB_CREDENTIAL,
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
  // After every plugin with an onResponse hook, before the routes (children copy the hooks there at registration).
  await app.register(connections, { perIpMax: config.CONNECTIONS_PER_IP_MAX })

  await app.register(healthRoutes, { prefix: '/health', metricsToken: config.METRICS_TOKEN, adminToken: config.ADMIN_TOKEN })
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
