import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { parseAgentTiers } from './lib/agent-tiers.js'

const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback })
const PositiveMs = (fallback: number) => Type.Integer({ minimum: 1, default: fallback })
/** The development default; the gateway warns at start when it is still in use. */
export const DEV_JWT_SECRET = 'dev-only-secret-change-me-in-production-0000'

const Count = (fallback: number) => Type.Integer({ minimum: 1, default: fallback })
const OneOf = <const T extends readonly string[]>(values: T, fallback: T[number]) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], default: fallback })

// One schema: env-schema validates and coerces it, and the typed config is derived from it.
export const ConfigSchema = Type.Object({
  // --- process
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Port(3000),
  LOG_LEVEL: OneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  BODY_LIMIT_BYTES: Count(16384),
  SHUTDOWN_TIMEOUT_MS: PositiveMs(10000),
  TRUST_PROXY: Type.Boolean({ default: false }),
  // --- redis (unset: every store in memory)
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[^,\\s]+:\\d+(,[^,\\s]+:\\d+)*$' })),
  REDIS_CONNECT_TIMEOUT_MS: PositiveMs(1000),
  REDIS_COMMAND_TIMEOUT_MS: PositiveMs(500),
  // --- auth
  JWT_SECRET: Type.String({ minLength: 32, default: DEV_JWT_SECRET }),
  JWT_TTL_SECONDS: Count(3600),
  // --- upstreams
  AUTH_PORT: Port(3001),
  USER_PORT: Port(3002),
  ORDER_PORT: Port(3003),
  AUTH_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  USER_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  ORDER_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  AUTH_TIMEOUT_MS: PositiveMs(5000),
  USER_TIMEOUT_MS: PositiveMs(5000),
  ORDER_TIMEOUT_MS: PositiveMs(5000),
  UPSTREAM_CONNECTIONS: Count(64),
  // --- agent usage (the model upstream and usage-based debit)
  MODEL_PORT: Port(3004),
  MODEL_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  MODEL_TIMEOUT_MS: PositiveMs(30000),
  MODEL_CHUNK_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 0 }),
  // --- rate limits
  RATE_LIMIT_MAX: Count(1000),
  RATE_LIMIT_WINDOW_MS: PositiveMs(60000),
  RATE_LIMIT_KEY: OneOf(['user', 'ip'], 'user'),
  RATE_LIMIT_LOGIN_MAX: Count(10),
  RATE_LIMIT_LOGIN_WINDOW_MS: PositiveMs(60000),
  RATE_LIMIT_DEMO_MAX: Count(5),
  RATE_LIMIT_DEMO_WINDOW_MS: PositiveMs(10000),
  RATE_LIMIT_HEADERS: OneOf(['legacy', 'draft', 'both'], 'legacy'),
  RATE_LIMIT_ON_REDIS_ERROR: OneOf(['open', 'closed'], 'open'),
  // --- agent quota (token bucket per agent)
  AGENT_QUOTA_CAPACITY: Count(100),
  AGENT_QUOTA_REFILL_PER_SECOND: Type.Number({ exclusiveMinimum: 0, default: 10 }),
  AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: Count(50),
  // --- agents (API keys, tiers, admin API; docs/AGENTS.md)
  AGENT_AUTH: OneOf(['key', 'open'], 'key'),
  AGENT_QUOTA_REQUESTS_PER_MINUTE: Count(1000),
  AGENT_QUOTA_MAX_PARALLEL: Count(16),
  AGENT_TIERS: Type.Optional(Type.String({ minLength: 2 })),
  AGENT_LEASE_TTL_MS: PositiveMs(60000),
  AGENT_KEY_CACHE_MS: Type.Integer({ minimum: 0, maximum: 1000, default: 500 }),
  AGENT_KEYS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  KEYS_PEPPER: Type.Optional(Type.String({ minLength: 32 })),
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 32 })),
  // --- circuit breakers
  BREAKER_FAILURE_THRESHOLD: Count(5),
  BREAKER_RESET_TIMEOUT_MS: PositiveMs(60000),
  BREAKER_SUCCESS_THRESHOLD: Count(3),
  // --- per-user locks
  LOCK_TTL_MS: PositiveMs(5000),
  // --- stubs
  STUB_FAULTS: OneOf(['0', '1'], '0'),
  // --- observability
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  AUDIT_LOG_PATH: Type.Optional(Type.String({ minLength: 1 }))
})

export type GatewayConfig = Static<typeof ConfigSchema>

/** Validates `env` against the schema; throws an Error naming the bad variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): GatewayConfig {
  // Drop empty strings so `FOO=` in a .env means "use the default", not "invalid".
  const data = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  try {
    const config = envSchema<GatewayConfig>({ schema: ConfigSchema, data, env: false })
    parseAgentTiers(config) // throws "AGENT_TIERS …" at start rather than at the first agent request
    return config
  } catch (err) {
    throw new Error(describe(err as Error & { errors?: Array<{ instancePath: string, message?: string, params: { allowedValues?: unknown[] } }> }))
  }
}

/** One line per bad variable: its name, what is wrong, and the allowed values when there is a list. */
function describe (err: Error & { errors?: Array<{ instancePath: string, message?: string, params: { allowedValues?: unknown[] } }> }): string {
  if (!err.errors) return err.message
  return err.errors.map((e) => {
    const allowed = e.params.allowedValues ? ` (${e.params.allowedValues.join(', ')})` : ''
    return `${e.instancePath.replace(/^\//, '') || 'env'} ${e.message ?? 'is invalid'}${allowed}`
  }).join('; ')
}

export function upstreamUrls (config: GatewayConfig): Record<'auth' | 'user' | 'order' | 'model', string> {
  return {
    auth: config.AUTH_URL ?? `http://127.0.0.1:${config.AUTH_PORT}`,
    user: config.USER_URL ?? `http://127.0.0.1:${config.USER_PORT}`,
    order: config.ORDER_URL ?? `http://127.0.0.1:${config.ORDER_PORT}`,
    model: config.MODEL_URL ?? `http://127.0.0.1:${config.MODEL_PORT}`
  }
}
