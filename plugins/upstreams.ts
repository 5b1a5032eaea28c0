import fp from 'fastify-plugin'
import { Pool, type Dispatcher } from 'undici'
import type { FastifyInstance } from 'fastify'
import { UpstreamAnswerRefusedError, UpstreamDeadlineError, UpstreamServerError } from '../src/lib/upstream-errors.js'
import { CREDENTIAL_HEADER } from '../src/lib/start-secrets.js'

export type UpstreamName = 'auth' | 'user' | 'order' | 'model'
export const UPSTREAM_NAMES: readonly UpstreamName[] = ['auth', 'user', 'order', 'model']

export interface UpstreamTarget { url: string, timeoutMs: number }
export interface UpstreamsOptions {
  targets: Record<UpstreamName, UpstreamTarget>
  connections: number
  /** Largest answer body relayed; a bigger one is refused (502) and the read stops there. */
  maxBodyBytes: number
  /** STUB_CREDENTIAL, sent as x-gateway-credential on every call (the stubs refuse calls without it). */
  credential?: string
}

export interface UpstreamCall {
  method: 'GET' | 'POST'
  path: string
  headers: Record<string, string>
  body?: string
}

export interface UpstreamResponse { statusCode: number, contentType: string, body: string }

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0]

/** The answers relayed: JSON (`application/json`, `application/*+json`), with or without parameters. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i

/**
 * One upstream call as an undici dispatch handler: the answer is buffered into a string and the per-call deadline
 * aborts the request through undici's own controller. Hand-written rather than `pool.request()` + `body.text()` +
 * an AbortController: those add per call an async resource, a Readable stream for the body and an AbortSignal with
 * its EventTarget listeners, about a quarter of the gateway's own CPU per proxied request (docs/PERFORMANCE.md).
 */
class BufferedCall implements Dispatcher.DispatchHandler {
  private controller: Controller | undefined
  private abortReason: Error | undefined
  private settled = false
  private statusCode = 0
  private contentType = ''
  private chunks: Buffer[] = []
  private received = 0
  private readonly timer: NodeJS.Timeout

  constructor (
    private readonly name: UpstreamName,
    timeoutMs: number,
    private readonly maxBodyBytes: number,
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (err: Error) => void
  ) {
    // The deadline covers queueing, connect, headers and body together, and answers on time even while the request
    // still waits for a free connection (it is aborted as soon as it gets one).
    this.timer = setTimeout(() => this.abort(new UpstreamDeadlineError(name, timeoutMs)), timeoutMs)
  }

  private abort (err: Error): void {
    this.fail(err)
    if (this.controller) this.controller.abort(err)
    else this.abortReason = err
  }

  private fail (err: Error): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    this.reject(err)
  }

  onRequestStart (controller: Controller): void {
    this.controller = controller
    if (this.abortReason) controller.abort(this.abortReason)
  }

  onResponseStart (_controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.statusCode = statusCode
    // A 5xx is thrown without its body (discarded as it arrives); anything else must be JSON within the size bound.
    if (statusCode >= 500) return
    const type = headers['content-type']
    this.contentType = typeof type === 'string' ? type : ''
    if (!JSON_TYPE.test(this.contentType)) return this.abort(new UpstreamAnswerRefusedError(this.name, `content type '${this.contentType}' is not JSON`))
    if (Number(headers['content-length']) > this.maxBodyBytes) this.tooLarge()
  }

  onResponseData (_controller: Controller, chunk: Buffer): void {
    if (this.statusCode >= 500 || this.settled) return
    this.received += chunk.length
    if (this.received > this.maxBodyBytes) return this.tooLarge()
    this.chunks.push(chunk)
  }

  private tooLarge (): void {
    this.chunks = []
    this.abort(new UpstreamAnswerRefusedError(this.name, `body is over UPSTREAM_MAX_BODY_BYTES (${this.maxBodyBytes})`))
  }

  onResponseEnd (): void {
    if (this.settled) return
    if (this.statusCode >= 500) return this.fail(new UpstreamServerError(this.name, this.statusCode))
    this.settled = true
    clearTimeout(this.timer)
    const chunks = this.chunks
    const body = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')
    this.resolve({ statusCode: this.statusCode, contentType: this.contentType, body })
  }

  onResponseError (_controller: Controller, err: Error): void {
    this.fail(err)
  }
}

function createUpstreams (opts: UpstreamsOptions) {
  const pools = new Map(UPSTREAM_NAMES.map((name) => [name, new Pool(opts.targets[name].url, {
    connections: opts.connections,
    keepAliveTimeout: 10_000,
    connectTimeout: opts.targets[name].timeoutMs
  })]))
  return {
    /**
     * One HTTP call; small bodies are buffered (cheaper than streaming them). A 5xx answer throws; so do the
     * deadline (connect, headers and body together) and an answer that is not JSON or is over `maxBodyBytes`,
     * which abort the request so the socket is not left busy.
     */
    call (name: UpstreamName, call: UpstreamCall): Promise<UpstreamResponse> {
      const timeoutMs = opts.targets[name].timeoutMs
      // The caller builds a fresh headers object per call: adding to it costs less than copying it.
      if (opts.credential !== undefined) call.headers[CREDENTIAL_HEADER] = opts.credential
      return new Promise((resolve, reject) => {
        pools.get(name)!.dispatch({
          method: call.method,
          path: call.path,
          headers: call.headers,
          body: call.body,
          // undici's own timers stay as a backstop; the deadline above fires first and on time.
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        }, new BufferedCall(name, timeoutMs, opts.maxBodyBytes, resolve, reject))
      })
    },
    /**
     * The upstream's pool and deadline, for callers that stream an answer instead of buffering it (the model route);
     * `withCredential` adds the stubs' credential to the headers they send, as `call` does.
     */
    pool: (name: UpstreamName) => ({
      pool: pools.get(name)!,
      timeoutMs: opts.targets[name].timeoutMs,
      withCredential (headers: Record<string, string>): Record<string, string> {
        if (opts.credential !== undefined) headers[CREDENTIAL_HEADER] = opts.credential
        return headers
      }
    }),
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
