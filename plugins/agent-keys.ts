import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAbortHookHandler, onRequestHookHandler, onResponseHookHandler, preHandlerHookHandler, preValidationHookHandler } from 'fastify'
import { AgentForbiddenError, AgentKeyRequiredError, AgentParallelLimitError, BadRequestError, KeyStoreUnavailableError, RateLimitUnavailableError } from '../src/errors.js'
import { bearerToken } from '../src/lib/jwt.js'
import { KEY_PREFIX, keyIdOf, keyMatches, newKey, type KeyRecord } from '../src/lib/agent-keys.js'
import type { AgentTier } from '../src/lib/agent-tiers.js'
import { createKeyStore, createLeaseStore } from '../src/lib/stores/index.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The agent of a valid, unexpired, unrevoked key sent as `x-api-key` or `Authorization: Bearer gwk_…`. */
    agent: { agentId: string, keyId: string, tier: string } | undefined
    /** Why a presented key was refused (a denial reason), for the 401 of an agent route. */
    agentFailure: DenialReason | undefined
    agentLease: { agentId: string, leaseId: string } | undefined
  }
  interface FastifyInstance {
    agentKeys: ReturnType<typeof createAgentKeys>
    agentTiers: ReturnType<typeof createTiers>
    /** The agent a request acts for: its key's, or in open mode the body's (or path's) `agentId` on the default tier. */
    actingAgent (request: FastifyRequest): { agentId: string, tier: AgentTier } | undefined
    /** True when the request carries `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time). */
    isAdmin (request: FastifyRequest): boolean
  }
  interface FastifyContextConfig {
    /**
     * The route acts for an agent. `spend`: a key is needed (AGENT_AUTH=key) and a max-parallel lease is held until
     * the response; `read`: a key or the admin token, no lease. Body/params `agentId`, when present, must be the key's.
     */
    agent?: 'spend' | 'read'
  }
}

export interface AgentKeysOptions {
  mode: 'key' | 'open'
  tiers: Map<string, AgentTier>
  pepper: string
  cacheMs: number
  leaseTtlMs: number
  keysFile?: string
  adminToken?: string
}

type DenialReason = 'missing_key' | 'invalid_key' | 'expired_key' | 'wrong_agent' | 'parallel_limit'
const DENIALS: DenialReason[] = ['missing_key', 'invalid_key', 'expired_key', 'wrong_agent', 'parallel_limit']
/** Key records remembered per gateway; more evict the oldest (FIFO), so a flood of keys costs bounded memory. */
const CACHE_ENTRIES = 10_000

function createTiers (tiers: Map<string, AgentTier>) {
  const fallback = tiers.get('default')!
  return {
    default: fallback,
    /** A tier by name; an unknown name (a tier removed from AGENT_TIERS) falls back to `default`. */
    get: (name: string): AgentTier => tiers.get(name) ?? fallback,
    has: (name: string) => tiers.has(name),
    all: () => [...tiers.values()]
  }
}

function createAgentKeys (fastify: FastifyInstance, opts: AgentKeysOptions) {
  const store = createKeyStore(fastify.sharedRedis, opts.keysFile)
  const { agentKeysIssued, agentKeysRevoked } = fastify.gatewayMetrics
  // A record looked up in Redis stays trusted for cacheMs (≤ 1 s): a revocation elsewhere reaches this gateway within
  // it. The memory store is a map lookup already, so no cache: a keys-file change applies at its next poll (250 ms).
  const cacheMs = fastify.sharedRedis ? opts.cacheMs : 0
  const cache = new Map<string, { record: KeyRecord, until: number }>()

  async function lookup (keyId: string): Promise<KeyRecord | undefined> {
    const at = Date.now()
    const hit = cache.get(keyId)
    if (hit !== undefined && at < hit.until) return hit.record
    cache.delete(keyId)
    const record = await store.get(keyId)
    if (record !== undefined && cacheMs > 0) {
      if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string)
      cache.set(keyId, { record, until: at + cacheMs })
    }
    return record
  }

  const summary = (r: KeyRecord) => ({
    keyId: r.keyId,
    agentId: r.agentId,
    tier: r.tier,
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString()
  })

  function knownTier (tier: string) {
    if (!fastify.agentTiers.has(tier)) throw new BadRequestError(`unknown tier "${tier}"; known tiers: ${fastify.agentTiers.all().map((t) => t.name).join(', ')}`)
  }

  // The admin API's store calls: a store that is down answers 503 with a code, not an unclassified 500.
  const storeDown = (err: Error): never => { throw new KeyStoreUnavailableError({ cause: err }) }

  return {
    mode: opts.mode,
    store,
    /** Creates a key; the returned `key` is the only time it exists outside the caller. */
    async issue (agentId: string, { tier = 'default', expiresInSeconds }: { tier?: string, expiresInSeconds?: number } = {}, request?: FastifyRequest) {
      knownTier(tier)
      const { key, record } = newKey(opts.pepper, agentId, tier, expiresInSeconds)
      await store.put(record).catch(storeDown)
      agentKeysIssued.inc({ tier })
      fastify.audit({ type: 'key_issued', outcome: 'success', agentId, detail: `key ${record.keyId}, tier ${tier}${record.expiresAt === null ? '' : `, expires ${new Date(record.expiresAt).toISOString()}`}` }, request)
      return { key, ...summary(record) }
    },
    async list (agentId: string) {
      return (await store.list(agentId).catch(storeDown)).sort((a, b) => a.createdAt - b.createdAt).map(summary)
    },
    /** Resolves false when there was no such key. */
    async revoke (keyId: string, request?: FastifyRequest): Promise<boolean> {
      const record = await store.remove(keyId).catch(storeDown)
      cache.delete(keyId)
      if (!record) return false
      agentKeysRevoked.inc({ tier: fastify.agentTiers.get(record.tier).name })
      fastify.audit({ type: 'key_revoked', outcome: 'success', agentId: record.agentId, detail: `key ${keyId}` }, request)
      return true
    },
    async setTier (keyId: string, tier: string) {
      knownTier(tier)
      const record = await store.setTier(keyId, tier).catch(storeDown)
      cache.delete(keyId)
      return record && summary(record)
    },
    /** The record of a presented key, or the reason it is refused. */
    async verify (key: string): Promise<KeyRecord | 'invalid_key' | 'expired_key'> {
      const keyId = keyIdOf(key)
      if (keyId === undefined) return 'invalid_key'
      const record = await lookup(keyId)
      if (!record || !keyMatches(opts.pepper, key, record)) return 'invalid_key'
      if (record.expiresAt !== null && record.expiresAt <= Date.now()) return 'expired_key'
      return record
    }
  }
}

export default fp(async function agentKeys (fastify: FastifyInstance, opts: AgentKeysOptions) {
  fastify.decorate('agentTiers', createTiers(opts.tiers))
  const agentKeys = createAgentKeys(fastify, opts)
  fastify.decorate('agentKeys', agentKeys)
  fastify.decorateRequest('agent', undefined)
  fastify.decorateRequest('agentFailure', undefined)
  fastify.decorateRequest('agentLease', undefined)
  const leases = createLeaseStore(fastify.sharedRedis)
  const { agentDenied } = fastify.gatewayMetrics
  for (const reason of DENIALS) for (const tier of ['none', ...opts.tiers.keys()]) agentDenied.inc({ reason, tier }, 0)
  if (opts.mode === 'open') fastify.log.warn('AGENT_AUTH=open: lab mode, /api/request takes the agent id from the body and needs no key')

  // Both digests are 32 bytes, so timingSafeEqual compares the token in constant time whatever its length.
  const adminDigest = opts.adminToken === undefined ? undefined : createHash('sha256').update(opts.adminToken).digest()
  fastify.decorate('isAdmin', function isAdmin (request: FastifyRequest) {
    const token = bearerToken(request.headers.authorization)
    if (adminDigest === undefined || token === undefined) return false
    return timingSafeEqual(createHash('sha256').update(token).digest(), adminDigest)
  })

  fastify.decorate('actingAgent', function actingAgent (request: FastifyRequest) {
    const agent = request.agent
    if (agent !== undefined) return { agentId: agent.agentId, tier: fastify.agentTiers.get(agent.tier) }
    if (opts.mode !== 'open') return undefined
    const claimed = claimedAgentId(request)
    return claimed === undefined ? undefined : { agentId: claimed, tier: fastify.agentTiers.default }
  })

  function presentedKey (request: FastifyRequest): string | undefined {
    const header = request.headers['x-api-key']
    if (header !== undefined) return Array.isArray(header) ? '' : header // two keys: refused, never guessed between
    const authorization = request.headers.authorization
    return authorization?.startsWith(`Bearer ${KEY_PREFIX}`) ? authorization.slice(7) : undefined
  }

  // Identify in onRequest, before the rate limiter keys on the agent; refuse later, on agent routes only. A callback
  // hook: requests without a key (most traffic) skip the promise an async hook costs.
  const identify: onRequestHookHandler = (request, _reply, done) => {
    const key = presentedKey(request)
    if (key === undefined) return done()
    agentKeys.verify(key).then((result) => {
      if (typeof result === 'string') request.agentFailure = result
      else request.agent = { agentId: result.agentId, keyId: result.keyId, tier: result.tier }
      done()
    }, (err) => done(new RateLimitUnavailableError({ cause: err })))
  }
  fastify.addHook('onRequest', identify)

  function deny (request: FastifyRequest, reason: DenialReason, error: Error): Error {
    const tier = request.agent === undefined ? 'none' : fastify.agentTiers.get(request.agent.tier).name
    agentDenied.inc({ reason, tier })
    fastify.audit({ type: 'agent_denied', outcome: 'denied', agentId: request.agent?.agentId ?? claimedAgentId(request), detail: `${reason}: ${error.message}` }, request)
    return error
  }

  // Before validation: a request without a valid key gets 401 whatever its body (not a 400 that reveals the schema).
  const authorize: preValidationHookHandler = function (request, _reply, done) {
    if (request.routeOptions.config.agent === 'read' && fastify.isAdmin(request)) return done()
    if (request.agent === undefined && (opts.mode === 'key' || request.agentFailure !== undefined)) {
      const reason = request.agentFailure ?? 'missing_key'
      const message = reason === 'missing_key'
        ? 'send "x-api-key: <key>" (keys come from POST /admin/agents/:agentId/keys or `npm run keys -- create`)'
        : reason === 'expired_key' ? 'the key has expired; ask for a new one' : 'the key is unknown, revoked or malformed'
      return done(deny(request, reason, new AgentKeyRequiredError(message)))
    }
    const claimed = claimedAgentId(request)
    if (request.agent !== undefined && claimed !== undefined && claimed !== request.agent.agentId) {
      return done(deny(request, 'wrong_agent', new AgentForbiddenError(`this key belongs to agent ${request.agent.agentId}, not ${claimed}`)))
    }
    done()
  }

  // After validation, so no lease is taken for a request that is refused as bad input.
  const lease: preHandlerHookHandler = function (request, reply, done) {
    if (request.routeOptions.config.agent !== 'spend') return done()
    const acting = fastify.actingAgent(request)
    if (acting === undefined) return done()
    takeLease(request, reply, acting.agentId, acting.tier).then(() => done(), done)
  }

  async function takeLease (request: FastifyRequest, reply: FastifyReply, agentId: string, tier: AgentTier) {
    let leaseId: string | null
    try {
      leaseId = await leases.acquire(agentId, tier.maxParallel, opts.leaseTtlMs)
    } catch (err) {
      throw new RateLimitUnavailableError({ cause: err })
    }
    if (leaseId === null) {
      reply.header('retry-after', 1)
      throw deny(request, 'parallel_limit', new AgentParallelLimitError(agentId, String(tier.maxParallel)))
    }
    request.agentLease = { agentId, leaseId }
  }

  // Released once, on whichever comes first: the response is sent, or the client went away.
  function releaseLease (request: FastifyRequest) {
    const lease = request.agentLease
    if (lease === undefined) return
    request.agentLease = undefined
    leases.release(lease.agentId, lease.leaseId).catch((err) => request.log.warn({ err }, 'agent lease release failed; it expires by AGENT_LEASE_TTL_MS'))
  }
  const release: onResponseHookHandler = (request, _reply, done) => { releaseLease(request); done() }
  const releaseOnAbort: onRequestAbortHookHandler = (request, done) => { releaseLease(request); done() }

  fastify.addHook('onRoute', (route) => {
    if (route.config?.agent === undefined) return
    route.preValidation = [authorize, ...hooks(route.preValidation)]
    route.preHandler = [lease, ...hooks(route.preHandler)]
    route.onResponse = [release, ...hooks(route.onResponse)]
    route.onRequestAbort = [releaseOnAbort, ...hooks(route.onRequestAbort)]
  })
  fastify.addHook('onClose', async () => agentKeys.store.close())
}, { name: 'agent-keys', dependencies: ['redis', 'metrics', 'audit-log'] })

function hooks<T> (existing: T | T[] | undefined): T[] {
  return existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]
}

/** The `agentId` a request names, in its body or path; undefined when it names none. */
function claimedAgentId (request: FastifyRequest): string | undefined {
  const fromBody = (request.body as { agentId?: unknown } | undefined)?.agentId
  if (typeof fromBody === 'string') return fromBody
  const fromParams = (request.params as { agentId?: unknown } | undefined)?.agentId
  return typeof fromParams === 'string' ? fromParams : undefined
}
