import type { ChatRequestBody, ChatUsage } from '../../lib/chat.js'

/** The stub's max_tokens when the request has none. */
export const DEFAULT_MAX_TOKENS = 16

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa']

/** 32-bit FNV-1a: small, dependency-free and stable, so a test can predict the stub's answer from its input. */
export function fnv1a (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/**
 * The fake model, deterministic from the request: prompt tokens = words in the messages (at least 1 per message),
 * completion tokens = 1 + fnv1a(model + messages) mod max_tokens (so 1 … max_tokens), one word per token.
 */
export function complete (body: Pick<ChatRequestBody, 'model' | 'messages' | 'max_tokens'>): { words: string[], usage: ChatUsage, finishReason: 'stop' | 'length' } {
  const prompt = body.messages.reduce((sum, m) => sum + Math.max(1, m.content.split(/\s+/).filter(Boolean).length), 0)
  const maxTokens = body.max_tokens ?? DEFAULT_MAX_TOKENS
  const hash = fnv1a(body.model + '\n' + body.messages.map((m) => `${m.role}:${m.content}`).join('\n'))
  const completion = 1 + (hash % maxTokens)
  const words = Array.from({ length: completion }, (_, i) => WORDS[(hash + i * 7) % WORDS.length])
  return { words, usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }, finishReason: completion === maxTokens ? 'length' : 'stop' }
}
