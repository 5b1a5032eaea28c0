import t, { type Test } from 'tap'
import Fastify from 'fastify'
import metrics from '../../plugins/metrics.js'
import auditLog from '../../plugins/audit-log.js'
import authentication from '../../plugins/authentication.js'
import redis from '../../plugins/redis.js'
import rateLimit from '../../plugins/rate-limit.js'
import { installErrorHandlers } from '../../src/error-handler.js'
import { JWT_SECRET, redisFor } from '../helper.js'

// Security issue 12, finding 3: filling the login limiter with other keys never resets a live counter before its
// window ends. Before the fix the in-memory store was an LRU (20 000 keys): after 12 wrong demo passwords, 20 001
// logins with other usernames evicted demo's counter and demo could be guessed again (200/401 instead of 429).
// The address layers are set out of the way here: this is the store alone (they bound the keys one address makes).
// An hour's window: the 20 001 requests take minutes on a busy machine, and demo's counter must still be live.
const OTHERS = 20_001

async function gatewayWithLoginRoute (t: Test, redisUrl?: string) {
  const app = Fastify()
  installErrorHandlers(app)
  await app.register(metrics)
  await app.register(auditLog, { path: '/dev/null' })
  await app.register(authentication, { secret: JWT_SECRET, ttlSeconds: 3600 })
  await app.register(redis, { url: redisUrl, connectTimeoutMs: 1000, commandTimeoutMs: 2000 })
  await app.register(rateLimit, {
    max: 1_000_000,
    windowMs: 60_000,
    keyBy: 'user',
    loginMax: 10,
    loginWindowMs: 3_600_000,
    demoMax: 5,
    demoWindowMs: 10_000,
    ipMax: 1_000_000,
    loginIpMax: 1_000_000,
    loginAccountMax: 1_000_000,
    failOpen: true
  })
  // The ip:username limiter alone (the route's config.rateLimit), as routes/auth/index.ts declares it.
  app.post('/auth/login', { config: { rateLimit: app.routeRateLimits.login } }, async (_request, reply) => reply.code(401).send({ wrong: true }))
  t.teardown(() => app.close())
  await app.ready()
  return app
}

for (const mode of ['memory', 'redis'] as const) {
  t.test(`${mode}: demo's counter survives ${OTHERS} logins with other usernames from the same address`, async (t) => {
    const app = await gatewayWithLoginRoute(t, mode === 'redis' ? (await redisFor(t)).url : undefined)
    const attempt = (username: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: 'guess' } })
    const first = []
    for (let i = 0; i < 12; i++) first.push((await attempt('demo')).statusCode)
    t.same(first, [...Array(10).fill(401), 429, 429], '10 guesses, then 429')
    for (let i = 0; i < OTHERS; i++) await attempt(`user_${i}`)
    t.equal((await attempt('demo')).statusCode, 429, 'demo is still limited: its counter was not evicted')
  })
}
