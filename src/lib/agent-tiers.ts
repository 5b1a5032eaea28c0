// Named agent tiers: the `default` one from the AGENT_QUOTA_* settings, more from AGENT_TIERS (JSON).
import { bucketRates } from './token-bucket.js'

export interface AgentTier {
  name: string
  capacity: number // bucket size, tokens
  refillPerSecond: number // tokens per second
  requestsPerMinute: number // requests per minute, whatever their tokens
  maxParallel: number // requests in flight at once, across every gateway
  maxTokensPerRequest: number // largest `tokens` one request may ask for
}

interface TierSettings {
  AGENT_QUOTA_CAPACITY: number
  AGENT_QUOTA_REFILL_PER_SECOND: number
  AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: number
  AGENT_QUOTA_REQUESTS_PER_MINUTE: number
  AGENT_QUOTA_MAX_PARALLEL: number
  AGENT_TIERS?: string
}

const FIELDS = ['capacity', 'refillPerSecond', 'requestsPerMinute', 'maxParallel', 'maxTokensPerRequest'] as const
export const TIER_NAME_PATTERN = '^[a-z][a-z0-9_-]{0,31}$'
const TIER_NAME = new RegExp(TIER_NAME_PATTERN)

/** Every tier by name, `default` included; throws an Error starting "AGENT_TIERS" that says what is wrong. */
export function parseAgentTiers (config: TierSettings): Map<string, AgentTier> {
  const base: AgentTier = {
    name: 'default',
    capacity: config.AGENT_QUOTA_CAPACITY,
    refillPerSecond: config.AGENT_QUOTA_REFILL_PER_SECOND,
    requestsPerMinute: config.AGENT_QUOTA_REQUESTS_PER_MINUTE,
    maxParallel: config.AGENT_QUOTA_MAX_PARALLEL,
    maxTokensPerRequest: config.AGENT_QUOTA_MAX_TOKENS_PER_REQUEST
  }
  const tiers = new Map([['default', base]])
  if (config.AGENT_TIERS === undefined) return tiers
  const fail = (what: string): never => { throw new Error(`AGENT_TIERS ${what}; expected JSON like {"gold":{"capacity":1000,"refillPerSecond":100,"requestsPerMinute":6000,"maxParallel":32}}`) }
  let parsed: unknown
  try { parsed = JSON.parse(config.AGENT_TIERS) } catch { fail('is not valid JSON') }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) fail('must be a JSON object of tiers')
  // `default` first, so the other tiers inherit its overridden fields wherever it appears in the JSON.
  const entries = Object.entries(parsed as Record<string, unknown>).sort(([a], [b]) => Number(b === 'default') - Number(a === 'default'))
  for (const [name, value] of entries) {
    if (!TIER_NAME.test(name)) fail(`tier name "${name.slice(0, 40)}" must match ${TIER_NAME_PATTERN}`)
    if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`tier "${name}" must be an object`)
    const tier: AgentTier = { ...tiers.get('default')!, name }
    for (const [field, v] of Object.entries(value as Record<string, unknown>)) {
      if (!(FIELDS as readonly string[]).includes(field)) fail(`tier "${name}" has an unknown field "${field.slice(0, 40)}" (known: ${FIELDS.join(', ')})`)
      const integer = field !== 'refillPerSecond'
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
        fail(`tier "${name}".${field} must be a positive ${integer ? 'integer' : 'number'}`)
      }
      (tier as unknown as Record<string, number>)[field] = v as number
    }
    try { bucketRates(tier) } catch (err) { fail(`tier "${name}": ${(err as Error).message}`) }
    tiers.set(name, tier)
  }
  return tiers
}
