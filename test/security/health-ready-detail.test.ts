// Finding 9 (/health/ready reveals breaker and Redis state to anyone): the status code and `status` are for everyone,
// the per-dependency detail for the metrics or admin token or the operator on loopback. Before the fix a remote
// peer got { status, redis, upstreams } (this test saw the detail where it wanted { status } only).
import t from 'tap'
import { build } from '../helper.js'

const METRICS_TOKEN = 'metrics-token-0123456789-abcdef'
const ADMIN_TOKEN = 'admin-token-0123456789-abcdefghijklmn'
const detail = { status: 'ok', redis: 'not_configured', upstreams: { auth: { breaker: 'closed' }, user: { breaker: 'closed' }, order: { breaker: 'closed' }, model: { breaker: 'closed' } } }

t.test('/health/ready: status for everyone, detail for trusted callers', async (t) => {
  const app = await build(t, { METRICS_TOKEN, ADMIN_TOKEN })
  const ready = async (remoteAddress: string, headers: Record<string, string> = {}) => {
    const res = await app.inject({ url: '/health/ready', remoteAddress, headers })
    return { status: res.statusCode, body: res.json() }
  }
  t.same(await ready('203.0.113.9'), { status: 200, body: { status: 'ok' } }, 'a remote peer gets the status only')
  t.same(await ready('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }), { status: 200, body: { status: 'ok' } }, 'a loopback proxy relaying a client gets the status only')
  t.same(await ready('203.0.113.9', { authorization: 'Bearer not-the-token-0123456789' }), { status: 200, body: { status: 'ok' } }, 'a wrong token gets the status only')
  t.same(await ready('127.0.0.1'), { status: 200, body: detail }, 'the operator on loopback gets the detail')
  t.same(await ready('203.0.113.9', { authorization: `Bearer ${METRICS_TOKEN}` }), { status: 200, body: detail }, 'the metrics token gets the detail')
  t.same(await ready('203.0.113.9', { authorization: `Bearer ${ADMIN_TOKEN}` }), { status: 200, body: detail }, 'the admin token gets the detail')
})
