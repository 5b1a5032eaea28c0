import { isIP } from 'node:net'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { parseAgentTiers } from './lib/agent-tiers.js'

const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback })
const PositiveMs = (fallback: number) => Type.Integer({ minimum: 1, default: fallback })

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
  // --- redis (unset: every store in memory)
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[^,\\s]+:\\d+(,[^,\\s]+:\\d+)*$' })),
  REDIS_CONNECT_TIMEOUT_MS: PositiveMs(1000),
  REDIS_COMMAND_TIMEOUT_MS: PositiveMs(500),
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
  // --- upstream answers (only JSON up to this size is relayed; anything else is a 502)
  UPSTREAM_MAX_BODY_BYTES: Count(1048576),
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
  // --- identity (security issue 12: secrets, trust, layered limits, stub credential; see docs/SECURITY.md)
  // No default: unset on a loopback HOST means "generate one at start" (src/lib/start-secrets.ts); required otherwise.
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32, maxLength: 512 })),
  JWT_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 3600 }),
  // Unset: trust no forwarded header. A hop count, or a comma list of proxy addresses/CIDRs (never `true`).
  TRUST_PROXY: Type.Optional(Type.String({ maxLength: 1024 })),
  // The address the stubs bind (not HOST: the gateway may face the network while its stubs stay private).
  STUB_HOST: Type.String({ default: '127.0.0.1', minLength: 1, maxLength: 255 }),
  // What the gateway sends upstream as x-gateway-credential and every stub requires; generated on loopback when unset.
  STUB_CREDENTIAL: Type.Optional(Type.String({ minLength: 32, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' })),
  // load_test: the auth stub creates load_test_* users on first login (the lab); unset: no self-signup.
  STUB_SIGNUP: Type.Optional(Type.Unsafe<'load_test'>({ type: 'string', enum: ['load_test'] })),
  // Per-client-address ceiling per RATE_LIMIT_WINDOW_MS on every request, whatever identity it carries (default 4 × RATE_LIMIT_MAX).
  RATE_LIMIT_IP_MAX: Type.Optional(Type.Integer({ minimum: 1 })),
  // POST /auth/login per client address per RATE_LIMIT_LOGIN_WINDOW_MS, counted when the headers arrive.
  RATE_LIMIT_LOGIN_IP_MAX: Count(100),
  // POST /auth/login per username per RATE_LIMIT_LOGIN_WINDOW_MS, from every address together (guesses per account).
  RATE_LIMIT_LOGIN_ACCOUNT_MAX: Count(20),
  // --- observability
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  AUDIT_LOG_PATH: Type.Optional(Type.String({ minLength: 1 })),
  // --- slow and hoarding clients, operator endpoints (sec-exhaustion; docs/HARDENING.md)
  REQUEST_TIMEOUT_MS: PositiveMs(30000),
  HEADERS_TIMEOUT_MS: PositiveMs(10000),
  KEEP_ALIVE_TIMEOUT_MS: PositiveMs(5000),
  CONNECTIONS_PER_IP_MAX: Count(256),
  // --- performance (workers, access log, denial audit aggregation)
  GATEWAY_WORKERS: Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')], { default: 1 }),
  ACCESS_LOG: OneOf(['on', 'off'], 'on'),
  AUDIT_DENIAL_FLUSH_MS: Type.Integer({ minimum: 0, default: 1000 })
})

export type GatewayConfig = Static<typeof ConfigSchema>

/** Validates `env` against the schema; throws an Error naming the bad variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): GatewayConfig {
  // Drop empty strings so `FOO=` in a .env means "use the default", not "invalid".
  const data = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  try {
    const config = envSchema<GatewayConfig>({ schema: ConfigSchema, data, env: false })
    trustProxyOption(config.TRUST_PROXY)
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

// --- identity
const HOP_COUNT = /^[0-9]{1,2}$/

/**
 * TRUST_PROXY as Fastify's trustProxy (proxy-addr: the client is the right-most address not trusted): unset → false,
 * a hop count → trust that many hops, else a list of proxy addresses or CIDRs. `true` (trust every hop, so the left-most entry
 * the client wrote) is refused.
 */
export function trustProxyOption (value: string | undefined): false | string[] | ((address: string, hop: number) => boolean) {
  if (value === undefined || value === 'false' || value === '0') return false
  if (value === 'true') throw new Error('TRUST_PROXY=true is not accepted (it trusts the address the client writes): set the number of proxies in front (e.g. 1) or their addresses/CIDRs (e.g. 10.0.0.0/8,192.168.1.5)')
  // What Fastify does with a number (its typings only take the function): trust the first n hops.
  if (HOP_COUNT.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  const entries = value.split(',').map((entry) => entry.trim())
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/')
    const family = isIP(address)
    const bitsOk = bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32))
    if (family === 0 || !bitsOk || extra !== undefined) throw new Error(`TRUST_PROXY: "${entry.slice(0, 64)}" is neither a hop count nor an IP address or CIDR (e.g. 1, or 10.0.0.0/8,127.0.0.1)`)
  }
  return entries
}

/** Loopback addresses a listener may bind without exposing itself (then generated secrets are acceptable). */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::ffff:127.0.0.1'
}

export function upstreamUrls (config: GatewayConfig): Record<'auth' | 'user' | 'order' | 'model', string> {
  return {
    auth: config.AUTH_URL ?? `http://127.0.0.1:${config.AUTH_PORT}`,
    user: config.USER_URL ?? `http://127.0.0.1:${config.USER_PORT}`,
    order: config.ORDER_URL ?? `http://127.0.0.1:${config.ORDER_PORT}`,
    model: config.MODEL_URL ?? `http://127.0.0.1:${config.MODEL_PORT}`
  }
}
