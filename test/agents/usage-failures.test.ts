// A timeout and an open breaker refund the whole reservation; a client that leaves mid-stream pays it. Once each.
import t from 'tap'
import { redisFor, setFault, waitFor } from '../helper.js'
import { chat, keyFor, longStreamBody as body, modelFor, remaining, settledMetrics, usageGateway } from './usage-helper.js'

// Real processes on a shared 2-core box: give the file more than tap's default 120 s.
t.setTimeout(300_000)
// One model stub for the file (fewer process starts); each test sets its fault mode first.
const model = await modelFor(t, { MODEL_CHUNK_DELAY_MS: '1000' })

for (const store of ['memory', 'redis'] as const) {
  t.test(`a timeout and an open breaker refund too; the breaker never reserves twice (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    await setFault(model, 'ok')
    const { app } = await usageGateway(t, model.url, { MODEL_TIMEOUT_MS: '300', BREAKER_FAILURE_THRESHOLD: '2', ...(redis ? { REDIS_URL: redis.url } : {}) })
    const key = await keyFor(app, 'unlucky')
    await setFault(model, 'slow', 2000)
    const slow = await chat(app, key, body())
    t.equal(slow.statusCode, 504)
    t.equal(slow.json().code, 'GW_UPSTREAM_TIMEOUT')
    t.equal(await remaining(app, 'unlucky'), 100, 'timeout: refunded')
    await setFault(model, 'fail')
    const failed = await chat(app, key, body({ stream: true }))
    t.equal(failed.statusCode, 502, 'a 500 from the model (streaming request): 502')
    const open = await chat(app, key, body())
    t.equal(open.statusCode, 503)
    t.equal(open.json().code, 'GW_CIRCUIT_OPEN')
    t.ok(Number(open.headers['retry-after']) > 0, 'Retry-After on the open breaker')
    t.equal(await remaining(app, 'unlucky'), 100, 'every failure refunded in full')
    t.same(await settledMetrics(app), { reserved: 120, debited: 0, refunded: 120 }, 'three reservations, three refunds, nothing debited')
  })

  t.test(`a client that leaves mid-stream pays its reservation, once (${store})`, async (t) => {
    const redis = store === 'redis' ? await redisFor(t) : undefined
    await setFault(model, 'ok')
    const { app } = await usageGateway(t, model.url, { ...(redis ? { REDIS_URL: redis.url } : {}) })
    const key = await keyFor(app, 'quitter')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const abort = new AbortController()
    const res = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body({ stream: true })), signal: abort.signal
    })
    await res.body!.getReader().read()
    abort.abort()
    await waitFor(async () => (await settledMetrics(app)).debited === 40, { what: 'the settlement after the client left' })
    t.same(await settledMetrics(app), { reserved: 40, debited: 40, refunded: 0 }, 'charged the reservation: the model had started the work')
    t.equal(await remaining(app, 'quitter'), 60)
  })
}
