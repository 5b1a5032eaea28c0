import { once } from 'node:events'
import t from 'tap'
import { Client } from 'undici'
import { gatewayProcessFor, redisFor, servedCount, setFault, stubsFor, waitFor } from '../helper.js'
import { waitForWorkers, workerPids } from './workers-helper.js'

// SIGTERM to the primary: every worker finishes what it already read, then exits; the primary exits 0 after them.
t.test('SIGTERM drains every worker: in-flight requests finish, exit code 0', async (t) => {
  const redis = await redisFor(t)
  const stubs = await stubsFor(t, {}, ['auth'])
  const gateway = await gatewayProcessFor(t, { ...stubs.gatewayEnv, REDIS_URL: redis.url, GATEWAY_WORKERS: '2', LOG_LEVEL: 'warn', AUDIT_LOG_PATH: '/dev/null' }, { timeoutMs: 60_000 })
  const pids = await waitForWorkers(gateway.process.pid!, 2)

  // Slow logins (1.5 s at the auth stub) on 8 connections, so both workers hold requests when the signal comes.
  await setFault(stubs.auth, 'slow', 1500)
  const served = await servedCount(stubs.auth)
  const clients = Array.from({ length: 8 }, () => new Client(gateway.url, { headersTimeout: 10_000 }))
  t.teardown(() => Promise.all(clients.map((c) => c.destroy())))
  const inFlight = clients.map(async (client, i) => {
    const res = await client.request({ method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password: `wrong-${i}` }) })
    await res.body.dump()
    return res.statusCode
  })
  // Mid-flight: all 8 have reached the stub, which holds each for 1.5 s.
  await waitFor(async () => await servedCount(stubs.auth) >= served + 8, { timeoutMs: 10_000, what: '8 logins at the stub' })
  const exited = once(gateway.process, 'exit') as Promise<[number | null, string | null]>
  gateway.process.kill('SIGTERM')
  const statuses = await Promise.all(inFlight)
  t.same(statuses, Array(8).fill(401), 'every in-flight request got its answer (401 wrong password)')
  const [code, signal] = await exited
  t.equal(code, 0, `the primary exits 0 (signal ${signal})`)
  t.same(pids.filter((pid) => { try { process.kill(pid, 0); return true } catch { return false } }), [], 'no worker is left running')
  t.same(workerPids(gateway.process.pid!), [], 'the primary has no child left')
})
