// Usage-based debit through POST /api/v1/chat/completions: reservation, refund of the unused part, overrun below
// zero then 429 + Retry-After until the debt refills, streaming settled from the final usage chunk. Real model stub.
import t from 'tap'
import { redisFor, sample } from '../helper.js'
import { chat, keyFor, modelFor, predictedUsage, remaining, sseEvents, usageGateway } from './usage-helper.js'

const messages = (text: string) => [{ role: 'user' as const, content: text }]

// One model stub process for the file (fewer process starts on a shared machine).
const model = await modelFor(t)

for (const store of ['memory', 'redis'] as const) {
  t.test(`reserve, refund the unused part, debit an overrun, then 429 until it refills (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    // default tier: 20 tokens, 1 token/s; at most 10 per call.
    const { app, clock } = await usageGateway(t, model.url, {
      AGENT_QUOTA_CAPACITY: '20', AGENT_QUOTA_REFILL_PER_SECOND: '1', AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '10', ...(redis ? { REDIS_URL: redis.url } : {})
    })
    const key = await keyFor(app, 'agent-usage.1')

    const noKey = await chat(app, undefined, { model: 'fake', messages: messages('hi') })
    t.equal(noKey.statusCode, 401, 'no key: 401')
    t.equal(noKey.json().code, 'GW_AGENT_KEY_REQUIRED')

    const tooMany = await chat(app, key, { model: 'fake', messages: messages('hi'), max_tokens: 11 })
    t.same(tooMany.json(), { statusCode: 400, error: 'Bad Request', message: 'max_tokens must be at most 10 for tier default', code: 'GW_BAD_REQUEST' }, 'more than the tier allows: 400')
    t.equal(await remaining(app, 'agent-usage.1'), 20, 'a refused request takes nothing')

    // Small usage: reserved 10, the stub uses prompt (2) + completion (1..10).
    const small = { model: 'fake', messages: messages('two words'), max_tokens: 10 }
    const used = predictedUsage(small, 10)
    const first = await chat(app, key, small)
    t.equal(first.statusCode, 200)
    t.equal(first.json().usage.total_tokens, used, 'the stub used what its arithmetic predicts')
    t.equal(first.headers['x-agent-tokens-reserved'], '10')
    t.equal(first.headers['x-agent-tokens-used'], String(used))
    t.equal(first.headers['x-agent-tokens-remaining'], String(20 - used), 'remaining after settlement')
    t.equal(await remaining(app, 'agent-usage.1'), 20 - used, 'the unused part came back')

    // Overrun: a 30-word prompt with max_tokens 1 uses 31 tokens for a reservation of 1.
    const long = { model: 'fake', messages: messages(Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ')), max_tokens: 1 }
    t.equal(predictedUsage(long, 1), 31)
    const over = await chat(app, key, long)
    t.equal(over.statusCode, 200)
    const debt = 20 - used - 31
    t.ok(debt < 0, `the bucket went below zero (${debt})`)
    t.equal(over.headers['x-agent-tokens-remaining'], String(debt))
    t.equal(await remaining(app, 'agent-usage.1'), debt)

    // In debt: refused until `1 − debt` tokens have refilled at 1 token/s.
    const refused = await chat(app, key, { model: 'fake', messages: messages('hi'), max_tokens: 1 })
    t.equal(refused.statusCode, 429)
    t.equal(refused.json().code, 'GW_QUOTA_EXCEEDED')
    t.equal(refused.headers['retry-after'], String(1 - debt), 'Retry-After = seconds until the reservation fits')
    clock.now += (1 - debt) * 1000 - 1
    t.equal((await chat(app, key, { model: 'fake', messages: messages('hi'), max_tokens: 1 })).statusCode, 429, '1 ms early: still 429')
    clock.now += 1
    const back = await chat(app, key, { model: 'fake', messages: messages('hi'), max_tokens: 1 })
    t.equal(back.statusCode, 200, 'after Retry-After: 200')

    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    const expectDebited = used + 31 + back.json().usage.total_tokens
    t.equal(sample(text, 'gateway_agent_tokens_reserved_total', { tier: 'default' }), 12)
    t.equal(sample(text, 'gateway_agent_tokens_debited_total', { tier: 'default' }), expectDebited)
    t.equal(sample(text, 'gateway_agent_tokens_refunded_total', { tier: 'default' }), Math.max(0, 10 - used), 'refunded: the unused part of the first call (the others overran)')
    t.notOk(text.includes('agent-usage.1'), 'no series carries the agent id')
  })

  t.test(`a stream passes through and settles from its final usage chunk (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    const { app } = await usageGateway(t, model.url, { AGENT_QUOTA_CAPACITY: '100', AGENT_QUOTA_MAX_TOKENS_PER_REQUEST: '50', ...(redis ? { REDIS_URL: redis.url } : {}) })
    const key = await keyFor(app, 'streamer')
    const body = { model: 'fake', messages: messages('stream me a few words please'), max_tokens: 40, stream: true }
    const used = predictedUsage(body, 40)
    const res = await chat(app, key, body)
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/event-stream/)
    t.equal(res.headers['x-agent-tokens-reserved'], '40')
    t.equal(res.headers['x-agent-tokens-remaining'], '60', 'streaming: remaining after the reservation (headers go first)')
    const events = sseEvents(res.body)
    t.equal(events.at(-1), '[DONE]', 'ends with [DONE]')
    const final = events.at(-2) as Record<string, any>
    t.equal(final.usage.total_tokens, used, 'the final chunk carries the usage')
    const words = events.slice(0, -2).map((e) => (e as Record<string, any>).choices[0].delta.content).join('')
    t.equal(words.split(' ').length, final.usage.completion_tokens, 'one word per completion token')
    t.equal(await remaining(app, 'streamer'), 100 - used, 'settled from the final chunk: reserved 40, charged the usage')

    // Without max_tokens: the tier's maxTokensPerRequest is reserved.
    const dflt = await chat(app, key, { model: 'fake', messages: messages('default reservation'), stream: true })
    t.equal(dflt.headers['x-agent-tokens-reserved'], '50')
    const usedDefault = predictedUsage({ model: 'fake', messages: messages('default reservation') }, 50)
    t.equal(await remaining(app, 'streamer'), 100 - used - usedDefault)
  })
}
