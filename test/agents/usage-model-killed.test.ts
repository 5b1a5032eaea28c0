// A model stub SIGKILLed mid-request or mid-stream: the reservation is refunded, exactly once.
import t from 'tap'
import { redisFor, setFault, servedCount, waitFor } from '../helper.js'
import { chat, keyFor, longStreamBody as body, modelFor, remaining, settledMetrics, usageGateway } from './usage-helper.js'

// Real processes on a shared 2-core box: give the file more than tap's default 120 s.
t.setTimeout(300_000)

for (const store of ['memory', 'redis'] as const) {
  t.test(`a model stub killed mid-request refunds the reservation (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    const model = await modelFor(t)
    const { app } = await usageGateway(t, model.url, { ...(redis ? { REDIS_URL: redis.url } : {}) })
    const key = await keyFor(app, 'victim')
    await setFault(model, 'hang')
    const pending = chat(app, key, body())
    await waitFor(async () => await servedCount(model) >= 1, { what: 'the model stub to hold the request' })
    t.equal(await remaining(app, 'victim'), 60, 'while the model works, the 40 tokens are reserved')
    await model.kill('SIGKILL')
    const res = await pending
    t.equal(res.statusCode, 502)
    t.same(res.json(), { statusCode: 502, error: 'Bad Gateway', message: 'Upstream model is unreachable or failed; retry later', code: 'GW_BAD_GATEWAY' })
    t.equal(res.headers['x-agent-tokens-remaining'], '100', 'the error answer says the tokens are back')
    t.equal(await remaining(app, 'victim'), 100, 'the whole reservation came back')
    t.same(await settledMetrics(app), { reserved: 40, debited: 0, refunded: 40 }, 'settled once: refunded exactly the reservation')
  })

  t.test(`a model stub killed mid-stream refunds the reservation (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    const model = await modelFor(t, { MODEL_CHUNK_DELAY_MS: '1000' })
    const { app } = await usageGateway(t, model.url, { ...(redis ? { REDIS_URL: redis.url } : {}) })
    const key = await keyFor(app, 'streamer')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const res = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body({ stream: true }))
    })
    t.equal(res.status, 200, 'the stream started')
    const reader = res.body!.getReader()
    const first = await reader.read()
    t.match(Buffer.from(first.value!).toString(), /^data: \{/, 'a first chunk arrived')
    await model.kill('SIGKILL')
    // The client sees the stream cut; it never sees a usage chunk.
    let text = ''
    try { for (let r = await reader.read(); !r.done; r = await reader.read()) text += Buffer.from(r.value).toString() } catch {}
    t.notOk(text.includes('"usage"'), 'no usage chunk reached the client')
    await waitFor(async () => await remaining(app, 'streamer') === 100, { what: 'the reservation to be refunded' })
    t.same(await settledMetrics(app), { reserved: 40, debited: 0, refunded: 40 }, 'settled once: refunded exactly the reservation')
  })
}
