import t from 'tap'
import { Redis } from 'ioredis'
import { keys } from '../src/lib/keys.js'
import { gatewayProcessFor, redisFor, stubsFor, waitFor } from './helper.js'

// Two defects the chaos harness found (docs/CHAOS.md), pinned down here: a client's next write must never meet the
// lock of its own answered write, and a lock acquisition that timed out on a stalled Redis must not leave a lock
// nobody holds once Redis runs again.

// One set of in-memory stub processes for the file; each subtest has its own Redis, gateways and user.
const stubs = await stubsFor(t, {}, ['auth', 'user'])

async function logIn (url: string, username: string): Promise<string> {
  const res = await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'pw-123' }) })
  if (res.status !== 200) throw new Error(`login answered ${res.status}`)
  return `Bearer ${(await res.json() as { token: string }).token}`
}

async function deposit (url: string, user: string, authorization: string) {
  const res = await fetch(`${url}/users/${user}/deposit`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 1 }) })
  return { status: res.status, body: await res.json() as { code?: string, balance?: number } }
}

t.test('back-to-back writes over two gateways: the lock is free when the answer arrives', async (t) => {
  const redis = await redisFor(t)
  const env = { ...stubs.gatewayEnv, REDIS_URL: redis.url, RATE_LIMIT_MAX: '100000', LOG_LEVEL: 'error' }
  const gateways = await Promise.all([gatewayProcessFor(t, env), gatewayProcessFor(t, env)])
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())

  const user = 'load_test_release_b2b'
  const authorization = await logIn(gateways[0].url, user)
  const WRITES = 200
  const refused: string[] = []
  const stillLocked: number[] = []
  for (let i = 0; i < WRITES; i++) {
    // Each write goes out the moment the previous answer is read, to the other gateway.
    const answer = await deposit(gateways[i % 2].url, user, authorization)
    if (answer.status !== 200) refused.push(`write ${i}: ${answer.status} ${answer.body.code}`)
    if (await client.exists(keys.lock(user))) stillLocked.push(i)
  }
  t.same(refused, [], `${WRITES} back-to-back writes alternating gateways: every one 200`)
  t.same(stillLocked, [], 'the lock key is gone whenever the client holds its answer')
  t.equal((await deposit(gateways[0].url, user, authorization)).body.balance, WRITES + 1, 'every write counted once')
})

t.test('an acquisition that timed out on a frozen Redis leaves no lock behind once Redis runs again', async (t) => {
  // The stubs keep their data in memory, so freezing the gateway's Redis touches only the gateway.
  const redis = await redisFor(t)
  const gateway = await gatewayProcessFor(t, { ...stubs.gatewayEnv, REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '200', LOCK_TTL_MS: '30000', LOG_LEVEL: 'error' })
  t.teardown(() => { redis.process?.kill('SIGCONT') })
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())

  const user = 'load_test_release_frozen'
  const authorization = await logIn(gateway.url, user)
  t.equal((await deposit(gateway.url, user, authorization)).status, 200, 'a write before the freeze')

  redis.process!.kill('SIGSTOP')
  const during = await deposit(gateway.url, user, authorization)
  t.equal(during.status, 503, 'Redis frozen: the lock fails closed')
  t.equal(during.body.code, 'GW_LOCK_UNAVAILABLE')
  redis.process!.kill('SIGCONT')

  // Redis now runs the SET NX PX it had queued; the gateway's compare-and-delete queued behind it must undo it.
  await waitFor(async () => (await client.exists(keys.lock(user))) === 0, { timeoutMs: 5000, what: 'no lock key left for the user' })
  const after = await deposit(gateway.url, user, authorization)
  t.equal(after.status, 200, `the next write goes through instead of waiting out the 30 s TTL (${after.body.code ?? 'ok'})`)
  t.equal(after.body.balance, 2, 'the refused write changed nothing')
})
