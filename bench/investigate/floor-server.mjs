// The floor under the gateway's cost per request: a bare Fastify 5 app (no logger, no hooks, no plugins). By default
// it relays GET /users/:id to the user stub through an undici Pool; with FLOOR_REFUSE=1 it answers every request with
// the gateway's 429 body and headers instead (the floor under a flood's refusals). ablate.mjs runs it beside the gateway.
import Fastify from 'fastify'
import { Pool } from 'undici'

const app = Fastify({ logger: false })
if (process.env.FLOOR_REFUSE === '1') {
  const refusal = { statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded; retry in 60 seconds', code: 'GW_RATE_LIMITED' }
  app.get('/users/:id', (_request, reply) => {
    reply.code(429).header('retry-after', 60).header('x-ratelimit-limit', 10).header('x-ratelimit-remaining', 0).send(refusal)
  })
} else {
  const pool = new Pool(process.env.USER_URL, { connections: 128, keepAliveTimeout: 10_000 })
  app.get('/users/:id', async (request, reply) => {
    const res = await pool.request({ method: 'GET', path: `/users/${request.params.id}`, headers: { 'x-gateway-credential': process.env.STUB_CREDENTIAL, 'x-user-id': request.params.id } })
    const body = await res.body.text()
    return reply.code(res.statusCode).type('application/json').send(body)
  })
}
const url = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log(`gateway listening on ${url}`)
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => app.close().then(() => process.exit(0)))
