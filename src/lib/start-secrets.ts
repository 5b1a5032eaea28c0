import { randomBytes } from 'node:crypto'
import { isLoopbackHost, loadConfig, type GatewayConfig } from '../config.js'
import { createRedisClient, waitForRedis } from './redis-client.js'

/** The header carrying STUB_CREDENTIAL: the gateway's upstream pools add it, every stub requires it. */
export const CREDENTIAL_HEADER = 'x-gateway-credential'

/** The secrets a process needs before it listens; none has a default that ships in the repository. */
const SECRETS = [
  { name: 'JWT_SECRET', key: 'gw:start:jwt-secret', what: 'the token signing secret' },
  { name: 'STUB_CREDENTIAL', key: 'gw:start:stub-credential', what: 'the gateway-to-stub credential' }
] as const

type SecretName = typeof SECRETS[number]['name']
export type WithSecrets = GatewayConfig & Record<SecretName, string>

const generate = () => randomBytes(32).toString('base64url')

/**
 * Fills JWT_SECRET and STUB_CREDENTIAL when they are unset. A process that listens beyond loopback (`host`) must have
 * both set: it refuses to start, naming the variable. On loopback a random value is generated at start; with
 * REDIS_URL it is shared by every process of that Redis (SET NX, then GET: the first one's value wins), so gateways
 * and stubs started separately agree on it. `say` reports once what was generated.
 */
export async function resolveStartSecrets (config: GatewayConfig, host: string, say: (line: string) => void, needed: readonly SecretName[] = ['JWT_SECRET', 'STUB_CREDENTIAL']): Promise<WithSecrets> {
  const missing = SECRETS.filter((secret) => needed.includes(secret.name) && config[secret.name] === undefined)
  if (missing.length === 0) return config as WithSecrets
  if (!isLoopbackHost(host)) {
    throw new Error(`${missing.map((s) => s.name).join(' and ')} must be set when listening on ${host} (not loopback): ${missing.map((s) => s.what).join(' and ')}, at least 32 characters (e.g. \`openssl rand -base64 32\`); see docs/SECURITY.md`)
  }
  const filled: Record<string, string> = {}
  const redis = createRedisClient({ url: config.REDIS_URL, connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  if (config.REDIS_URL !== undefined && redis !== undefined) {
    redis.on('error', () => {})
    try {
      await waitForRedis(redis, 10_000)
      for (const secret of missing) {
        await redis.set(secret.key, generate(), 'NX')
        filled[secret.name] = (await redis.get(secret.key))!
      }
    } finally {
      await redis.quit().catch(() => redis.disconnect())
    }
    say(`${missing.map((s) => s.name).join(' and ')} not set: using a random value generated at start and shared through Redis (${missing.map((s) => s.key).join(', ')}); loopback only`)
  } else {
    redis?.disconnect()
    for (const secret of missing) filled[secret.name] = generate()
    say(`${missing.map((s) => s.name).join(' and ')} not set: using a random value generated at start (tokens die with this process); loopback only`)
  }
  return { ...config, ...filled } as WithSecrets
}

/** A process's start: config from env and its secrets, or exit 1 with the variable's name in the message. */
export async function startConfigOrExit (name: string, hostOf: (config: GatewayConfig) => string, needed?: readonly SecretName[], env = process.env): Promise<WithSecrets> {
  try {
    const config = loadConfig(env)
    return await resolveStartSecrets(config, hostOf(config), (line) => console.log(`${name}: ${line}`), needed)
  } catch (err) {
    console.error(`${name}: invalid configuration: ${(err as Error).message}`)
    process.exit(1)
  }
}
