import { Type, type Static } from 'typebox'

// The OpenAI-compatible chat completion shapes shared by the gateway's route and the model stub.

/** Largest usage the gateway accepts from a model: far above any context window, far below a safe integer. */
export const MAX_USAGE_TOKENS = 1_000_000

export const ChatMessage = Type.Object({
  role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]),
  content: Type.String({ maxLength: 8192 }),
  name: Type.Optional(Type.String({ maxLength: 64 }))
}, { additionalProperties: false })

export const ChatRequest = (maxTokens: number) => Type.Object({
  model: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' }),
  messages: Type.Array(ChatMessage, { minItems: 1, maxItems: 64 }),
  max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: maxTokens })),
  stream: Type.Optional(Type.Boolean()),
  stream_options: Type.Optional(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
  top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  user: Type.Optional(Type.String({ maxLength: 128 }))
}, { additionalProperties: false })
export type ChatRequestBody = Static<ReturnType<typeof ChatRequest>>

export const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() })
export type ChatUsage = Static<typeof Usage>

export const ChatCompletion = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({
    index: Type.Integer(),
    message: Type.Object({ role: Type.Literal('assistant'), content: Type.String() }),
    finish_reason: Type.String()
  })),
  usage: Usage
})

/** A model's `total_tokens` when it is a usable count, else undefined (the caller then keeps the reservation). */
export function usedTokens (usage: unknown): number | undefined {
  const total = (usage as { total_tokens?: unknown } | null | undefined)?.total_tokens
  return Number.isSafeInteger(total) && (total as number) >= 0 && (total as number) <= MAX_USAGE_TOKENS ? total as number : undefined
}
