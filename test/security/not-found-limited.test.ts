// Finding 8 (404s never limited): unknown paths count against the client's limit like any route. Before the fix
// every unknown path answered 404 forever (this test saw 404 where it wanted 429).
import t from 'tap'
import { build } from '../helper.js'

t.test('with RATE_LIMIT_MAX=3, the fourth unknown path from one client gets 429', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '3' })
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push((await app.inject({ url: `/no-such-path-${i}`, remoteAddress: '198.51.100.4' })).statusCode)
  t.same(statuses, [404, 404, 404, 429, 429], 'three 404s, then 429')
  const limited = await app.inject({ url: '/wp-login.php', remoteAddress: '198.51.100.4' })
  t.same(limited.json(), { statusCode: 429, error: 'Too Many Requests', message: limited.json().message, code: 'GW_RATE_LIMITED' }, 'the 429 is the JSON error')
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await app.inject({ url: '/unknown', remoteAddress: '198.51.100.5' })).statusCode, 404, 'another client still gets its 404')
  t.equal((await app.inject({ url: '/health', remoteAddress: '198.51.100.4' })).statusCode, 200, '/health stays unlimited')
})
