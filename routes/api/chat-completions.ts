import { pipeline } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AgentKeyRequiredError, BadRequestError } from '../../src/errors.js'
import { ChatCompletion, ChatRequest, MAX_USAGE_TOKENS, usedTokens, type ChatRequestBody } from '../../src/lib/chat.js'
import { errorResponses } from '../../src/lib/schemas.js'
import { UsageMeter } from '../../src/lib/sse-usage.js'
import { UpstreamDeadlineError, UpstreamServerError } from '../../src/lib/upstream-errors.js'
import type { BucketDecision } from '../../src/lib/token-bucket.js'
import type { Reservation } from '../../plugins/agent-usage.js'

const MODEL_PATH = '/v1/chat/completions'
/** A model's error answer (4xx) is relayed; more than this is not an error message. */
const MAX_ERROR_BODY_BYTES = 16 * 1024

/** What the agent's bucket holds, on every answer of this route (after settlement, or after the reservation when streaming). */
function tokenHeaders (reply: FastifyReply, reserved: number, decision: BucketDecision | undefined): void {
  reply.header('x-agent-tokens-reserved', reserved)
  if (decision) reply.header('x-agent-tokens-remaining', decision.remaining)
}

/**
 * POST /api/v1/chat/completions: an OpenAI-compatible call to the model upstream, paid by usage. The agent's
 * bucket gives `max_tokens` (or its tier's maxTokensPerRequest) before the call; afterwards `usage.total_tokens`
 * settles it: the unused part comes back, an overrun is debited (the bucket may go below zero). docs/AGENTS.md.
 */
const chatCompletions: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(MODEL_PATH, {
    config: { agent: 'spend' },
    schema: {
      body: ChatRequest(MAX_USAGE_TOKENS),
      response: { 200: ChatCompletion, ...errorResponses(400, 401, 403, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    // Keyed agents only, open mode included: a model call is paid by the key's agent, never by a body field.
    const acting = request.agent === undefined ? undefined : fastify.actingAgent(request)
    if (acting === undefined) throw new AgentKeyRequiredError('send "x-api-key: <key>"; model calls need an agent key in every AGENT_AUTH mode')
    const { agentId, tier } = acting
    const limit = Math.min(tier.maxTokensPerRequest, tier.capacity)
    // More than the bucket can ever hold is bad input: a 429 would promise a Retry-After that never comes true.
    if (request.body.max_tokens !== undefined && request.body.max_tokens > limit) {
      throw new BadRequestError(`max_tokens must be at most ${limit} for tier ${tier.name}`)
    }
    const reservation = await fastify.agentUsage.reserve(request, reply, agentId, tier, request.body.max_tokens ?? limit)
    try {
      return request.body.stream === true
        ? await streamed(request, reply, request.body, reservation)
        : await buffered(request, reply, request.body, reservation)
    } catch (err) {
      // Whatever failed before the model's usage was known: the whole reservation comes back (a no-op if settled).
      tokenHeaders(reply, reservation.reserved, await reservation.refund() ?? reservation.decision)
      throw err
    }
  })

  /** The model's body as sent upstream: max_tokens is the reservation, and a stream always ends with its usage. */
  function upstreamBody (body: ChatRequestBody, reserved: number): string {
    return JSON.stringify(body.stream === true
      ? { ...body, max_tokens: reserved, stream_options: { include_usage: true } }
      : { ...body, max_tokens: reserved })
  }

  async function buffered (request: FastifyRequest, reply: FastifyReply, body: ChatRequestBody, reservation: Reservation) {
    const upstream = await fastify.callUpstream(request, reply, 'model', { method: 'POST', path: MODEL_PATH, body: upstreamBody(body, reservation.reserved) })
    let after: BucketDecision | undefined
    if (upstream.statusCode === 200) {
      let used: number | undefined
      try { used = usedTokens(JSON.parse(upstream.body).usage) } catch {}
      after = await reservation.charge(used)
      if (used !== undefined) reply.header('x-agent-tokens-used', used)
    } else {
      after = await reservation.refund()
    }
    tokenHeaders(reply, reservation.reserved, after ?? reservation.decision)
    return reply.code(upstream.statusCode).type(upstream.contentType).send(upstream.body)
  }

  async function streamed (request: FastifyRequest, reply: FastifyReply, body: ChatRequestBody, reservation: Reservation) {
    const { pool, timeoutMs, withCredential } = fastify.upstreams.pool('model')
    // The deadline covers the whole exchange, the stream included, so a model that stalls mid-answer is cut off.
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(new UpstreamDeadlineError('model', timeoutMs)), timeoutMs)
    let upstream
    try {
      upstream = await fastify.guardUpstream(request, reply, 'model', async () => {
        const res = await pool.request({
          method: 'POST',
          path: MODEL_PATH,
          headers: withCredential(fastify.upstreamHeaders(request, true)),
          body: upstreamBody(body, reservation.reserved),
          signal: abort.signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        })
        if (res.statusCode >= 500) {
          await res.body.dump() // frees the connection; the 5xx body is not relayed
          throw new UpstreamServerError('model', res.statusCode)
        }
        return res
      })
    } catch (err) {
      clearTimeout(timer)
      throw err
    }
    if (upstream.statusCode !== 200) {
      clearTimeout(timer)
      const text = await readBounded(upstream.body)
      tokenHeaders(reply, reservation.reserved, await reservation.refund())
      return reply.code(upstream.statusCode).type(String(upstream.headers['content-type'] ?? 'application/json')).send(text)
    }

    // Settled once the stream is over: with the usage chunk when it came; a refund when the model failed or timed
    // out first; the reservation kept when the client left (the model did the work) or the model never said.
    let clientGone = false
    reply.raw.once('close', () => { if (!reply.raw.writableFinished) clientGone = true })
    const meter = new UsageMeter()
    pipeline(upstream.body, meter, (err) => {
      clearTimeout(timer)
      if (err && !clientGone) request.log.warn({ err, upstream: 'model' }, 'model stream failed')
      const settlement = meter.used !== undefined
        ? reservation.charge(meter.used)
        : err && !clientGone ? reservation.refund() : reservation.charge(undefined)
      settlement.catch(() => {})
    })
    tokenHeaders(reply, reservation.reserved, reservation.decision)
    reply.code(200).header('cache-control', 'no-cache').type(String(upstream.headers['content-type'] ?? 'text/event-stream'))
    return reply.send(meter)
  }
}

/** Reads at most MAX_ERROR_BODY_BYTES of a body; leaving the loop early destroys the rest. */
async function readBounded (body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_ERROR_BODY_BYTES) break
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export default chatCompletions
