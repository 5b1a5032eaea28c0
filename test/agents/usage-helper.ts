// Shared by the usage-* tests: a gateway (in process) with a real model stub process, a frozen quota clock (so no
// refill blurs the arithmetic) and keys issued in process.
import type { Test } from 'tap'
import type { Gateway } from '../../src/app.js'
import { build, JWT_SECRET, sample, startStub } from '../helper.js'
import { ADMIN_TOKEN } from './helper.js'
import { complete } from '../../src/services/model/completion.js'
import type { ChatRequestBody } from '../../src/lib/chat.js'

export const FROZEN_AT = 1_700_000_000_000

/** The model stub process (faults enabled), stopped at teardown. */
export async function modelFor (t: Test, env: Record<string, string> = {}) {
  const model = await startStub('model', { JWT_SECRET, STUB_FAULTS: '1', ...env })
  t.teardown(() => model.kill('SIGKILL'))
  return model
}

/** A gateway on that model; `clock` starts frozen (tests move `clock.now` when they need time to pass). */
export async function usageGateway (t: Test, modelUrl: string, env: Record<string, string> = {}) {
  const clock = { now: FROZEN_AT }
  const app = await build(t, { ADMIN_TOKEN, MODEL_URL: modelUrl, RATE_LIMIT_MAX: '100000', ...env }, { quotaClock: () => clock.now })
  return { app, clock }
}

export async function keyFor (app: Gateway, agentId: string, tier?: string): Promise<string> {
  return (await app.agentKeys.issue(agentId, tier === undefined ? {} : { tier })).key
}

export function chat (app: Gateway, key: string | undefined, body: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: '/api/v1/chat/completions', headers: key === undefined ? {} : { 'x-api-key': key }, payload: body })
}

/** What the model stub will say it used for this body with `reserved` as max_tokens (its documented arithmetic). */
export function predictedUsage (body: Pick<ChatRequestBody, 'model' | 'messages'>, reserved: number): number {
  return complete({ ...body, max_tokens: reserved }).usage.total_tokens
}

/** The `data:` payloads of an SSE body, `[DONE]` included as the string. */
export function sseEvents (text: string): Array<Record<string, any> | '[DONE]'> {
  return text.split('\n\n').filter((block) => block.startsWith('data: ')).map((block) => {
    const data = block.slice(6)
    return data === '[DONE]' ? '[DONE]' : JSON.parse(data)
  })
}

/** The agent's bucket in whole tokens (exact while the clock is frozen: no refill fractions). */
export async function remaining (app: Gateway, agentId: string, tier = 'default'): Promise<number> {
  return (await app.agentQuota.bucket(tier).peek(agentId)).remaining
}

/** A chat body whose answer takes at least `minWords` completion tokens (8 chunks of 4 words for 30): found by search. */
export function longAnswerBody (maxTokens = 40, minWords = 30, extra: Record<string, unknown> = {}) {
  for (let i = 0; ; i++) {
    const messages = [{ role: 'user' as const, content: `tell me something long ${i}` }]
    if (complete({ model: 'fake', messages, max_tokens: maxTokens }).usage.completion_tokens >= minWords) return { model: 'fake', messages, max_tokens: maxTokens, ...extra }
  }
}

// At least 8 chunks: with MODEL_CHUNK_DELAY_MS=1000 a stream lasts 8 s, so a kill or abort after its first chunk
// lands mid-stream even on a loaded machine.
export const longStreamBody = (extra: Record<string, unknown> = {}) => longAnswerBody(40, 30, extra)

/** The usage counters of the default tier, as /metrics shows them. */
export async function settledMetrics (app: Gateway) {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return {
    reserved: sample(text, 'gateway_agent_tokens_reserved_total', { tier: 'default' }),
    debited: sample(text, 'gateway_agent_tokens_debited_total', { tier: 'default' }),
    refunded: sample(text, 'gateway_agent_tokens_refunded_total', { tier: 'default' })
  }
}
