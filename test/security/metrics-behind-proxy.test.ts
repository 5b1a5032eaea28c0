// Finding 9 (/metrics trusts any loopback peer): a proxy on loopback relays everyone, so a loopback peer that carries a
// forwarding header is not the operator. Before the fix, GET /metrics from 127.0.0.1 with X-Forwarded-For of a remote
// client answered 200 with every series (this test saw 200 where it wanted 403).
import t from 'tap'
import { build } from '../helper.js'

const METRICS_TOKEN = 'metrics-token-0123456789-abcdef'
const refused = { statusCode: 403, error: 'Forbidden', message: 'Not allowed: /metrics is served to loopback clients or with the METRICS_TOKEN bearer token', code: 'GW_FORBIDDEN' }

for (const trustProxy of ['false', '1']) {
  t.test(`TRUST_PROXY=${trustProxy}: /metrics for the token or a loopback peer relaying nobody`, async (t) => {
    const app = await build(t, { METRICS_TOKEN, TRUST_PROXY: trustProxy })
    const get = (headers: Record<string, string> = {}, remoteAddress = '127.0.0.1') => app.inject({ url: '/metrics', remoteAddress, headers })
    t.equal((await get()).statusCode, 200, 'a loopback peer without forwarding headers (Prometheus on the host) is served')
    for (const [name, value] of [['x-forwarded-for', '203.0.113.9'], ['x-forwarded-for', '127.0.0.1'], ['forwarded', 'for=203.0.113.9'], ['x-real-ip', '203.0.113.9']]) {
      const res = await get({ [name]: value })
      t.same({ status: res.statusCode, body: res.json() }, { status: 403, body: refused }, `a loopback peer relaying ${name}: ${value} is refused`)
    }
    t.equal((await get({ 'x-forwarded-for': '203.0.113.9', authorization: `Bearer ${METRICS_TOKEN}` })).statusCode, 200, 'the token works through a proxy')
    t.equal((await get({ authorization: `Bearer ${METRICS_TOKEN}` }, '203.0.113.9')).statusCode, 200, 'the token works from a remote peer')
    t.equal((await get({}, '203.0.113.9')).statusCode, 403, 'a remote peer without the token is refused')
  })
}
