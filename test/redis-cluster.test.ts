// The gateway on a real 3-master Redis Cluster (REDIS_CLUSTER_NODES, no REDIS_URL): limits, quotas and locks stay
// exact. Two gateway instances in this process, each with its own Cluster client, share state only through Redis
// (test/rate-limit-shared.test.ts does the same with separate processes on a single Redis).
import t from 'tap'
import { Cluster } from 'ioredis'
import { createTokenSigner } from '../src/lib/jwt.js'
import { clusterFor, clusterReady, ownerOf, ownersOf } from './cluster-helper.js'
import type { Gateway } from '../src/app.js'
import { build, JWT_SECRET, sample, setFault, stubsFor, waitFor } from './helper.js'

const sign = createTokenSigner(JWT_SECRET, 3600)

async function call (gateway: Gateway, path: string, init: { method?: 'GET' | 'POST', body?: unknown, token?: string } = {}) {
  const res = await gateway.inject({
    method: init.method ?? 'GET',
    url: path,
    headers: init.token ? { authorization: `Bearer ${init.token}` } : {},
    ...(init.body === undefined ? {} : { payload: init.body as object })
  })
  return { status: res.statusCode, headers: res.headers, body: res.json() }
}

t.test('on a 3-master cluster', async (t) => {
  // Process start-up dominates on a busy box, so one cluster, one set of stubs and two gateways serve every subtest.
  const [cluster, stubs] = await Promise.all([clusterFor(t, 3), stubsFor(t, {}, ['auth', 'user'])])
  const gateways = await Promise.all([0, 1].map(() => build(t, {
    ...stubs.gatewayEnv,
    REDIS_CLUSTER_NODES: cluster.nodesEnv,
    // Generous: a late reply on a loaded box would fail over to the local limiter and blur exactness.
    REDIS_COMMAND_TIMEOUT_MS: '5000',
    RATE_LIMIT_MAX: '20',
    RATE_LIMIT_IP_MAX: '1000000', // the per-user layer alone: the address layer has test/security/address-ceiling
    RATE_LIMIT_WINDOW_MS: '60000',
    AGENT_QUOTA_CAPACITY: '30',
    AGENT_QUOTA_MAX_PARALLEL: '1000', // concurrent requests of one agent: its bucket decides, not the in-flight cap
    AGENT_QUOTA_REFILL_PER_SECOND: '0.001',
    AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '3',
    LOCK_TTL_MS: '5000'
  })))

  t.test('the global limit is exact across 2 gateways for keys on every master', async (t) => {
    const users = ['cl_user_a', 'cl_user_b', 'cl_user_c', 'cl_user_d', 'cl_user_e', 'cl_user_f']
    const owners = new Set(await Promise.all(users.map((user) => ownerOf(cluster, `gw:rl:u:${user}`))))
    t.equal(owners.size, 3, 'the keys under test live on all three masters')

    // 6 users × 2 gateways × 40 concurrent requests, limit 20 each.
    const results = await Promise.all(users.flatMap((user) => gateways.flatMap((gateway) =>
      Array.from({ length: 40 }, () => call(gateway, '/api/quota/cl_agent', { token: sign(user) }).then((r) => ({ user, ...r }))))))
    for (const user of users) {
      const mine = results.filter((r) => r.user === user)
      t.equal(mine.filter((r) => r.status === 200).length, 20, `${user}: exactly 20 of 80 admitted`)
      t.equal(mine.filter((r) => r.status === 429).length, 60, `${user}: the other 60 refused`)
      t.same(mine.filter((r) => r.status === 200).map((r) => Number(r.headers['x-ratelimit-remaining'])).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i), `${user}: Remaining 0..19, each once`)
    }
    const refusal = results.find((r) => r.status === 429)!
    t.same(refusal.body, { statusCode: 429, error: 'Too Many Requests', message: `Rate limit exceeded; retry in ${refusal.headers['retry-after']} seconds`, code: 'GW_RATE_LIMITED' })

    // Per-route limits (a child store with its own key prefix) work on the cluster as well.
    const demo = []
    for (let i = 0; i < 6; i++) demo.push((await call(gateways[i % 2], '/api/test-rate-limit')).status)
    t.same(demo, [200, 200, 200, 200, 200, 429], 'the demo limit (5) is shared by both gateways')

    for (const gateway of gateways) {
      const text = (await gateway.inject({ method: 'GET', url: '/metrics' })).body
      t.equal(sample(text, 'gateway_redis_degradation_events_total', { event: 'degraded' }), 0, 'no fallback to the local limiter')
    }
  })

  t.test('the token bucket is exact across 2 gateways', async (t) => {
    const agents = ['cl_agent_1', 'cl_agent_2', 'cl_agent_3']
    t.ok(new Set(await Promise.all(agents.map((agent) => ownerOf(cluster, `gw:bucket:{${agent}}`)))).size >= 2, 'the buckets live on more than one master')

    // 3 agents × 2 gateways × 30 requests of 1 token: 30 tokens each (refill is one token per 1000 s). Each request
    // carries its own user's token, so the global limit (20 per user) stays out of the way.
    let caller = 0
    const results = await Promise.all(agents.flatMap((agentId) => gateways.flatMap((gateway) =>
      Array.from({ length: 30 }, () => call(gateway, '/api/request', { method: 'POST', body: { agentId, tokens: 1 }, token: sign(`cl_caller_${caller++}`) })
        .then((r) => ({ agentId, ...r }))))))
    for (const agentId of agents) {
      const mine = results.filter((r) => r.agentId === agentId)
      t.equal(mine.filter((r) => r.status === 200).length, 30, `${agentId}: exactly the capacity spent`)
      t.equal(mine.filter((r) => r.status === 429).length, 30, `${agentId}: the rest refused`)
      const quota = await call(gateways[0], `/api/quota/${agentId}`, { token: sign(`cl_reader_${agentId}`) })
      t.same({ ...quota.body, fullInMs: undefined }, { agentId, tier: 'default', capacity: 30, remaining: 0, refillPerSecond: 0.001, fullInMs: undefined })
    }
    const refusal = results.find((r) => r.status === 429)!
    t.same(refusal.body.code, 'GW_QUOTA_EXCEEDED')
    t.equal(refusal.headers['retry-after'], '1000', 'one token at 0.001/s is 1000 s away')

    // The bucket is one hash in one slot, written by the Lua script on its master.
    const client = new Cluster(cluster.nodesEnv.split(',').map((hostPort) => ({ host: '127.0.0.1', port: Number(hostPort.split(':')[1]) })))
    t.teardown(() => client.disconnect())
    const stored = await client.hgetall('gw:bucket:{cl_agent_1}')
    t.same(Object.keys(stored).sort(), ['n', 'u'])
    t.ok(Number(stored.n) < 1_000_000, `less than one token left in the stored bucket (${stored.n} millionths)`)
  })

  t.test('per-user locks: 10 concurrent deposits with a slow user service → one 200, nine 503 GW_USER_LOCKED', async (t) => {
    const gateway = gateways[0]
    const user = 'load_test_cluster_lock'
    const login = await call(gateway, '/auth/login', { method: 'POST', body: { username: user, password: 'pw-123' } })
    t.equal(login.status, 200)
    const token = login.body.token as string

    await setFault(stubs.user, 'slow', 1500)
    t.teardown(() => setFault(stubs.user, 'ok'))
    const results = await Promise.all(Array.from({ length: 10 }, () =>
      call(gateway, `/users/${user}/deposit`, { method: 'POST', body: { amount: 100 }, token })))
    const ok = results.filter((r) => r.status === 200)
    const locked = results.filter((r) => r.status === 503)
    t.equal(ok.length, 1, 'exactly one deposit went through')
    t.same(ok[0]?.body, { id: user, balance: 100 })
    t.equal(locked.length, 9, 'the other nine were refused')
    t.ok(locked.every((r) => r.headers['retry-after'] === '1'), 'each refusal carries Retry-After')
    t.same(locked[0].body, {
      statusCode: 503,
      error: 'Service Unavailable',
      message: `Another operation for user ${user} is in progress; retry after the Retry-After delay`,
      code: 'GW_USER_LOCKED'
    })

    await setFault(stubs.user, 'ok')
    const after = await call(gateway, `/users/${user}/deposit`, { method: 'POST', body: { amount: 1 }, token })
    t.same([after.status, after.body], [200, { id: user, balance: 101 }], 'the lock was released: the next deposit goes through')
  })

  // Last: it kills a master. The client options must make a dead master fail fast, as a dead single Redis does.
  t.test('a master SIGKILLed: its keys fall back within a bound, no 5xx; back on the cluster after it restarts', async (t) => {
    const gateway = gateways[0]
    const victim = cluster.nodes[0]
    const demoKey = (ip: string) => `gw:rl:GET/api/test-rate-limit-demo:${ip}`
    // Client IPs whose demo-limit keys live on the victim (each used once, so the demo limit of 5 never bites).
    const candidates = Array.from({ length: 2000 }, (_, i) => `10.20.${i >> 8}.${i & 255}`)
    const owners = await ownersOf(cluster, candidates.map(demoKey))
    const ips = candidates.filter((_, i) => owners[i] === victim.port)
    const demo = async (ip: string) => {
      const started = performance.now()
      const res = await gateway.inject({ method: 'GET', url: '/api/test-rate-limit', remoteAddress: ip })
      return { status: res.statusCode, ms: performance.now() - started }
    }
    let next = 0
    t.equal((await demo(ips[next++])).status, 200)

    await victim.kill('SIGKILL')
    const killedAt = performance.now()
    const during = await Promise.all(ips.slice(next, next += 20).map(demo))
    // Then one at a time for a second, so several 250 ms Redis probes meet the dead master.
    while (performance.now() - killedAt < 1000 && next < ips.length - 10) during.push(await demo(ips[next++]))
    const slowest = Math.max(...during.map((r) => r.ms))
    t.ok(slowest < 1000, `every request completed in < 1000 ms (slowest ${slowest.toFixed(0)} ms)`)
    t.same([...new Set(during.map((r) => r.status))], [200], 'all admitted by the fallback, no 5xx')
    const degraded = sample((await gateway.inject({ method: 'GET', url: '/metrics' })).body, 'gateway_redis_degradation_events_total', { event: 'degraded' })
    t.ok(degraded >= 1, `degradation counted (${degraded})`)

    await victim.start()
    // Until the other masters clear the victim's FAIL flag, any node may still answer CLUSTERDOWN.
    await clusterReady(cluster)
    await waitFor(async () => (await demo(`10.30.0.${Math.floor(Math.random() * 250) + 1}`)).status === 200 &&
      sample((await gateway.inject({ method: 'GET', url: '/metrics' })).body, 'gateway_redis_degraded') === 0,
    { timeoutMs: 15_000, intervalMs: 100, what: 'the limiter back on the cluster' })
    const ip = ips[ips.length - 1]
    const after = []
    for (let i = 0; i < 6; i++) after.push((await demo(ip)).status)
    t.same(after, [200, 200, 200, 200, 200, 429], 'the demo limit is enforced again')
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[1].port }])
    t.teardown(() => client.disconnect())
    t.equal(await client.get(demoKey(ip)), '6', 'counted on the restarted master, not in the fallback')
  })
})
