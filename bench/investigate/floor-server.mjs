// The floor under the gateway's cost per proxied request: a bare Fastify 5 app (no logger, no hooks, no plugins)
// relaying GET /users/:id to the user stub through an undici Pool. ablate.mjs measures it beside the real gateway.
import Fastify from 'fastify'
import { Pool } from 'undici'

const pool = new Pool(process.env.USER_URL, { connections: 128, keepAliveTimeout: 10_000 })
const app = Fastify({ logger: false })
app.get('/users/:id', async (request, reply) => {
  const res = await pool.request({ method: 'GET', path: `/users/${request.params.id}`, headers: { 'x-gateway-credential': process.env.STUB_CREDENTIAL, 'x-user-id': request.params.id } })
  const body = await res.body.text()
  return reply.code(res.statusCode).type('application/json').send(body)
})
const url = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log(`gateway listening on ${url}`)
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => app.close().then(() => process.exit(0)))
