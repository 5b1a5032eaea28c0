import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import type { GatewayConfig } from '../../config.js'
import { ChatCompletion, ChatRequest, type ChatRequestBody } from '../../lib/chat.js'
import { errorResponses } from '../../lib/schemas.js'
import { createStubApp, type StubOptions } from '../stub.js'
import { complete, fnv1a } from './completion.js'

const WORDS_PER_CHUNK = 4

/** The fake OpenAI-compatible model: POST /v1/chat/completions, JSON or SSE (`stream: true`), usage always reported. */
export async function buildModelService (config: Pick<GatewayConfig, 'MODEL_CHUNK_DELAY_MS'>, opts: StubOptions) {
  const app = await createStubApp('model', opts)
  const chunkDelayMs = config.MODEL_CHUNK_DELAY_MS

  app.post('/v1/chat/completions', {
    schema: { body: ChatRequest(1_000_000), response: { 200: ChatCompletion, ...errorResponses(400) } }
  }, async (request, reply) => {
    const body = request.body
    const { words, usage, finishReason } = complete(body)
    const id = `chatcmpl-${fnv1a(request.id).toString(16)}`
    const created = Math.floor(Date.now() / 1000)
    if (body.stream !== true) {
      return {
        id,
        object: 'chat.completion' as const,
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant' as const, content: words.join(' ') }, finish_reason: finishReason }],
        usage
      }
    }
    reply.header('cache-control', 'no-cache').type('text/event-stream; charset=utf-8')
    // A stream skips the 200 schema's serializer; the cast only tells TypeScript so.
    return reply.send(Readable.from(sse(body, id, created, words, finishReason, usage, chunkDelayMs)) as never)
  })
  return app
}

// The OpenAI stream: content deltas, a last chunk with finish_reason and usage, then `[DONE]`.
async function * sse (body: ChatRequestBody, id: string, created: number, words: string[], finishReason: string, usage: object, chunkDelayMs: number) {
  const chunk = (choice: object, extra: object = {}) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [choice], ...extra })}\n\n`
  for (let i = 0; i < words.length; i += WORDS_PER_CHUNK) {
    if (chunkDelayMs > 0) await delay(chunkDelayMs)
    const content = words.slice(i, i + WORDS_PER_CHUNK).join(' ') + (i + WORDS_PER_CHUNK < words.length ? ' ' : '')
    yield chunk({ index: 0, delta: i === 0 ? { role: 'assistant', content } : { content }, finish_reason: null })
  }
  yield chunk({ index: 0, delta: {}, finish_reason: finishReason }, { usage })
  yield 'data: [DONE]\n\n'
}
