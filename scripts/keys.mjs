#!/usr/bin/env node
// npm run keys -- create <agentId> [--tier T] [--expires-in S] | list <agentId> | revoke <keyId>
// Talks to the key store directly: Redis with REDIS_URL (or REDIS_CLUSTER_NODES), else the AGENT_KEYS_FILE of the
// embedded mode. Reads the same env as the gateway (KEYS_PEPPER or JWT_SECRET must match it). Prints JSON on stdout.
import { parseArgs } from 'node:util'
import { loadConfig } from '../dist/src/config.js'
import { AGENT_ID_PATTERN, KEY_ID_PATTERN, keysPepper, newKey } from '../dist/src/lib/agent-keys.js'
import { parseAgentTiers } from '../dist/src/lib/agent-tiers.js'
import { createRedisClient, waitForRedis } from '../dist/src/lib/redis-client.js'
import { createKeyStore } from '../dist/src/lib/stores/index.js'

const USAGE = 'usage: npm run keys -- create <agentId> [--tier T] [--expires-in S] | list <agentId> | revoke <keyId>'

function fail (message) {
  console.error(`keys: ${message}`)
  process.exit(2)
}

const { positionals, values } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { tier: { type: 'string' }, 'expires-in': { type: 'string' } } })
  } catch (err) { return fail(`${err.message}\n${USAGE}`) }
})()
const [command, id] = positionals
if (!['create', 'list', 'revoke'].includes(command) || id === undefined || positionals.length > 2) fail(USAGE)
if (command === 'revoke' ? !new RegExp(KEY_ID_PATTERN).test(id) : !new RegExp(AGENT_ID_PATTERN).test(id)) {
  fail(command === 'revoke' ? `"${id}" is not a key id (16 hex digits)` : `agent id "${id}" must match ${AGENT_ID_PATTERN}`)
}

let config
try { config = loadConfig() } catch (err) { fail(err.message) }
const redis = createRedisClient({ url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES, connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
if (!redis && !config.AGENT_KEYS_FILE) fail('set REDIS_URL (keys in Redis) or AGENT_KEYS_FILE (the embedded gateway\'s keys file)')
if (redis) await waitForRedis(redis, config.REDIS_CONNECT_TIMEOUT_MS * 3).catch((err) => fail(err.message))
const store = createKeyStore(redis, config.AGENT_KEYS_FILE)
// A gateway started on loopback without JWT_SECRET shares the one it generated through Redis (src/lib/start-secrets.ts).
if (config.KEYS_PEPPER === undefined && config.JWT_SECRET === undefined) {
  const generated = redis ? await redis.get('gw:start:jwt-secret') : null
  if (generated === null) fail('set KEYS_PEPPER (or JWT_SECRET) to the gateway\'s value: the keys\' HMAC depends on it')
  config = { ...config, JWT_SECRET: generated }
}

const iso = (ms) => ms === null ? null : new Date(ms).toISOString()
const summary = (r) => ({ keyId: r.keyId, agentId: r.agentId, tier: r.tier, createdAt: iso(r.createdAt), expiresAt: iso(r.expiresAt) })

try {
  if (command === 'create') {
    const tier = values.tier ?? 'default'
    const tiers = parseAgentTiers(config)
    if (!tiers.has(tier)) fail(`unknown tier "${tier}"; known tiers: ${[...tiers.keys()].join(', ')}`)
    const expiresIn = values['expires-in'] === undefined ? undefined : Number(values['expires-in'])
    if (expiresIn !== undefined && !(Number.isInteger(expiresIn) && expiresIn > 0)) fail('--expires-in takes a whole number of seconds > 0')
    const { key, record } = newKey(keysPepper(config), id, tier, expiresIn)
    await store.put(record)
    console.log(JSON.stringify({ key, ...summary(record) }))
    console.error('keys: the key above is shown only now; the store keeps only its HMAC')
  } else if (command === 'list') {
    console.log(JSON.stringify((await store.list(id)).sort((a, b) => a.createdAt - b.createdAt).map(summary)))
  } else {
    const removed = await store.remove(id)
    if (!removed) fail(`no key ${id}`)
    console.log(JSON.stringify({ revoked: id, agentId: removed.agentId }))
  }
} finally {
  store.close()
  await redis?.quit().catch(() => redis.disconnect())
}
