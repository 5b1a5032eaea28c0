import { timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyMetricsModule from 'fastify-metrics'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ForbiddenError, BadRequestError, StubCredentialError, StubFaultError, errorBody } from '../errors.js'
import { installErrorHandlers } from '../error-handler.js'
import type { GatewayConfig } from '../config.js'
import { createRedisClient, waitForRedis, type RedisClient } from '../lib/redis-client.js'
import { CREDENTIAL_HEADER, startConfigOrExit, type WithSecrets } from '../lib/start-secrets.js'
import { isLoopback } from '../lib/loopback.js'
import { pathOf } from '../lib/url-path.js'

export type FaultMode = 'ok' | 'fail' | 'slow' | 'hang'

export interface StubOptions {
  /** STUB_FAULTS=1: the /__fault admin endpoints exist (loopback peers only). */
  faults: boolean
  redis?: RedisClient
  logLevel?: string
  /** STUB_CREDENTIAL: every request but /health and the fault admin must carry it as x-gateway-credential. */
  credential: string
}

const UNCOUNTED = new Set(['/__fault', '/health', '/metrics'])
// Open without the credential: liveness (compose healthchecks) and the fault admin (STUB_FAULTS=1, loopback peers).
const OPEN = new Set(['/__fault', '/health'])

/** A stub service's Fastify app: error shape, metrics, health and fault injection shared by auth, user and order. */
export async function createStubApp (name: string, opts: StubOptions) {
  const app = Fastify({
    logger: { level: opts.logLevel ?? 'warn', redact: ['req.headers.authorization'] },
    // Hung requests (fault mode "hang") must not keep close() waiting.
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } }
  }).withTypeProvider<TypeBoxTypeProvider>()
  installErrorHandlers(app)
  await app.register(fastifyMetricsModule.default, { endpoint: '/metrics', routeMetrics: { enabled: { histogram: true, summary: false }, routeBlacklist: ['/metrics', '/__fault'] } })

  // First hook: a caller without the gateway's credential reaches nothing, /metrics included (finding 7).
  const expected = Buffer.from(opts.credential)
  app.addHook('onRequest', (request, _reply, done) => {
    // By path when no route matched: /__fault without STUB_FAULTS answers its 404, as without the credential check.
    if (OPEN.has(request.routeOptions.url ?? pathOf(request.url))) return done()
    // Prometheus can send a bearer token but no custom header on the Prometheus 2.x this lab checks with.
    const bearer = request.headers.authorization
    const given = request.headers[CREDENTIAL_HEADER] ?? (bearer?.startsWith('Bearer ') ? bearer.slice(7) : undefined)
    const ok = typeof given === 'string' && given.length === expected.length && timingSafeEqual(Buffer.from(given), expected)
    done(ok ? undefined : new StubCredentialError(CREDENTIAL_HEADER))
  })

  const fault = { mode: 'ok' as FaultMode, delayMs: 0, served: 0 }
  app.addHook('onRequest', async (request, reply) => {
    if (UNCOUNTED.has(request.routeOptions.url ?? '')) return
    fault.served++
    if (fault.mode === 'fail') return reply.code(500).send(errorBody(new StubFaultError(name)))
    if (fault.mode === 'slow') await new Promise((resolve) => setTimeout(resolve, fault.delayMs))
    if (fault.mode === 'hang') await new Promise(() => {})
  })

  app.get('/health', async () => ({ status: 'ok', service: name }))

  if (opts.faults) {
    const FaultBody = Type.Object({
      mode: Type.Union([Type.Literal('ok'), Type.Literal('fail'), Type.Literal('slow'), Type.Literal('hang')]),
      delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 }))
    }, { additionalProperties: false })
    const loopbackOnly = async (request: { socket: { remoteAddress?: string } }) => {
      if (!isLoopback(request.socket.remoteAddress)) throw new ForbiddenError('fault admin answers loopback clients only')
    }
    app.get('/__fault', { onRequest: loopbackOnly }, async () => ({ mode: fault.mode, delayMs: fault.delayMs, served: fault.served }))
    app.post('/__fault', { onRequest: loopbackOnly, schema: { body: FaultBody } }, async (request) => {
      if (request.body.mode === 'slow' && request.body.delayMs === undefined) throw new BadRequestError('mode "slow" needs delayMs')
      fault.mode = request.body.mode
      fault.delayMs = request.body.delayMs ?? 0
      app.log.warn({ mode: fault.mode, delayMs: fault.delayMs }, 'fault mode set')
      return { mode: fault.mode, delayMs: fault.delayMs }
    })
  }
  return app
}

/** The stub's fencing check input: the x-fencing-token header as a number, or undefined when absent. */
export function fencingToken (header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined
  if (typeof header !== 'string' || !/^[1-9][0-9]{0,15}$/.test(header)) throw new BadRequestError('x-fencing-token must be a positive integer')
  return Number(header)
}

/**
 * Runs a stub as its own process: config from env, Redis when REDIS_URL is set, graceful SIGTERM. It binds STUB_HOST
 * (loopback by default) and needs STUB_CREDENTIAL (and JWT_SECRET when `signs`), generated on loopback when unset.
 */
export async function runStub (name: string, portOf: (config: GatewayConfig) => number, build: (config: WithSecrets, opts: StubOptions) => Promise<FastifyInstance>, signs = false) {
  const config = await startConfigOrExit(name, (c) => c.STUB_HOST, signs ? ['JWT_SECRET', 'STUB_CREDENTIAL'] : ['STUB_CREDENTIAL'])
  const redis = createRedisClient({ url: config.REDIS_URL, connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  if (redis) {
    redis.on('error', () => {})
    await waitForRedis(redis, 10_000)
  }
  const app = await build(config, { faults: config.STUB_FAULTS === '1', redis, logLevel: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, credential: config.STUB_CREDENTIAL })
  app.addHook('onClose', async () => { await redis?.quit().catch(() => redis.disconnect()) })
  await app.listen({ host: config.STUB_HOST, port: portOf(config) })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : portOf(config)
  console.log(`${name} listening on http://${config.STUB_HOST}:${port}`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
}
