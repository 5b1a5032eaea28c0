import type { Test } from 'tap'
import { buildGateway, type Gateway, type GatewayOverrides } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startRedis, startStubs, startGateway, freePort, LAB_STUB_CREDENTIAL, type StubName } from '../scripts/lib/stack.mjs'
import { promSample } from '../scripts/lib/prom-text.mjs'

export { waitFor, setFault, servedCount, startStub, freePort, LAB_STUB_CREDENTIAL } from '../scripts/lib/stack.mjs'

/** Test-only: every test passes it explicitly; a gateway started as a user would never accepts it (test/security). */
export const JWT_SECRET = 'test-secret-0123456789-0123456789-abcdef'
/** Tests written before agent keys call /api/* without one (AGENT_AUTH=open); test/agents/* pass AGENT_AUTH=key. */
const AGENT_AUTH = 'open'

/** Builds the gateway in-process (not listening), awaits ready() and closes it at teardown. */
export async function build (t: Test, env: Record<string, string> = {}, overrides: GatewayOverrides = {}): Promise<Gateway> {
  const app = await buildGateway(loadConfig({ JWT_SECRET, STUB_CREDENTIAL: LAB_STUB_CREDENTIAL, AGENT_AUTH, LOG_LEVEL: 'silent', AUDIT_LOG_PATH: '/dev/null', ...env }), { logger: false, ...overrides })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** A real redis-server on a free port, stopped at teardown. */
export async function redisFor (t: Test, opts: Parameters<typeof startRedis>[0] = {}) {
  const redis = await startRedis(opts)
  t.teardown(() => redis.stop())
  return redis
}

/**
 * Stub processes on free ports (`names`: auth, user and order unless a test needs fewer), stopped at teardown;
 * faults enabled. Every upstream not started (the model: test/agents starts its own) gets a URL on a port nobody
 * listens on, so a stray call is a 502, never an answer from whatever holds the default port, and a test starts only
 * the processes it talks to.
 */
export async function stubsFor<N extends StubName = 'auth' | 'user' | 'order'> (t: Test, env: Record<string, string> = {}, names: readonly N[] = ['auth', 'user', 'order'] as N[]) {
  const stubs = await startStubs({ JWT_SECRET, STUB_FAULTS: '1', ...env }, names)
  t.teardown(() => stubs.stop())
  const nowhere = `http://127.0.0.1:${await freePort()}`
  const unreachable = { AUTH_URL: nowhere, USER_URL: nowhere, ORDER_URL: nowhere, MODEL_URL: nowhere }
  return { ...stubs, gatewayEnv: { ...unreachable, ...stubs.gatewayEnv } }
}
/** What `stubsFor(t)` gives: the auth, user and order stubs. */
export type Stubs = Awaited<ReturnType<typeof stubsFor<'auth' | 'user' | 'order'>>>

/** A gateway process on a free port, stopped at teardown. */
export async function gatewayProcessFor (t: Test, env: Record<string, string> = {}, opts: Parameters<typeof startGateway>[1] = {}) {
  const gateway = await startGateway({ JWT_SECRET, AGENT_AUTH, ...env }, opts)
  t.teardown(() => gateway.stop())
  return gateway
}

/** Logs a `load_test_` user in through the gateway and returns the Bearer header. */
export async function login (app: Gateway, username: string, password = 'pw-123'): Promise<{ authorization: string }> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
  if (res.statusCode !== 200) throw new Error(`login of ${username} answered ${res.statusCode}: ${res.body}`)
  return { authorization: `Bearer ${res.json().token}` }
}

/** Reads one Prometheus sample (summed over the label sets that match) from a text exposition, 0 when absent. */
export function sample (metricsText: string, name: string, labels: Record<string, string> = {}): number {
  return promSample(metricsText, name, labels, { absent: 0 })
}
