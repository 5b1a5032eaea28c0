import fp from 'fastify-plugin'
import { Pool } from 'undici'
import type { FastifyInstance } from 'fastify'
import { UpstreamDeadlineError, UpstreamServerError } from '../src/lib/upstream-errors.js'

export type UpstreamName = 'auth' | 'user' | 'order'
export const UPSTREAM_NAMES: readonly UpstreamName[] = ['auth', 'user', 'order']

export interface UpstreamTarget { url: string, timeoutMs: number }
export interface UpstreamsOptions {
  targets: Record<UpstreamName, UpstreamTarget>
  connections: number
}

export interface UpstreamCall {
  method: 'GET' | 'POST'
  path: string
  headers: Record<string, string>
  body?: string
}

export interface UpstreamResponse { statusCode: number, contentType: string, body: string }

function createUpstreams (opts: UpstreamsOptions) {
  const pools = new Map(UPSTREAM_NAMES.map((name) => [name, new Pool(opts.targets[name].url, {
    connections: opts.connections,
    keepAliveTimeout: 10_000,
    connectTimeout: opts.targets[name].timeoutMs
  })]))
  return {
    /**
     * One HTTP call; small bodies are buffered (cheaper than streaming them). A 5xx answer throws; so does the
     * deadline (connect, headers and body together), which aborts the request so the socket is not left busy.
     */
    async call (name: UpstreamName, call: UpstreamCall): Promise<UpstreamResponse> {
      const timeoutMs = opts.targets[name].timeoutMs
      const deadline = new AbortController()
      const timer = setTimeout(() => deadline.abort(new UpstreamDeadlineError(name, timeoutMs)), timeoutMs)
      try {
        const res = await pools.get(name)!.request({
          method: call.method,
          path: call.path,
          headers: call.headers,
          body: call.body,
          signal: deadline.signal,
          // undici's own timers stay as a backstop; the deadline above fires first and on time.
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        })
        const body = await res.body.text()
        if (res.statusCode >= 500) throw new UpstreamServerError(name, res.statusCode)
        return { statusCode: res.statusCode, contentType: String(res.headers['content-type'] ?? 'application/json; charset=utf-8'), body }
      } finally {
        clearTimeout(timer)
      }
    },
    async close () {
      await Promise.all([...pools.values()].map((pool) => pool.close()))
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    upstreams: ReturnType<typeof createUpstreams>
  }
}

export default fp(async function upstreams (fastify: FastifyInstance, opts: UpstreamsOptions) {
  const clients = createUpstreams(opts)
  fastify.decorate('upstreams', clients)
  fastify.addHook('onClose', () => clients.close())
}, { name: 'upstreams' })
