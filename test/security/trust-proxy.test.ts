import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { build } from '../helper.js'

// Security issue 12, finding 5: the client address is the right-most untrusted hop and must parse as an IP. Before the
// fix TRUST_PROXY=true took the left-most X-Forwarded-For entry (the client's own words), and `not-an-ip` or a
// 5 000-character value became the address that every limit keyed on (here: no 429 for rotating left-most entries,
// 200 instead of 400 for the bad values, and `true` was accepted).
t.test('TRUST_PROXY=true is refused at start with what to set instead', async (t) => {
  t.throws(() => loadConfig({ TRUST_PROXY: 'true' }), /TRUST_PROXY=true is not accepted.*number of proxies.*CIDRs/)
  t.throws(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33' }), /TRUST_PROXY: "10\.0\.0\.0\/33" is neither/)
  t.throws(() => loadConfig({ TRUST_PROXY: 'x'.repeat(2000) }), /TRUST_PROXY/)
  t.ok(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1' }), 'a list of addresses and CIDRs is accepted')
})

t.test('one trusted hop: the address limit keys on the right-most entry, whatever the client writes before it', async (t) => {
  const app = await build(t, { TRUST_PROXY: '1', RATE_LIMIT_IP_MAX: '3' })
  const statuses = []
  // The client rotates what it writes; the proxy appends the address it saw (203.0.113.5).
  for (let i = 0; i < 6; i++) {
    const res = await app.inject({ url: '/nowhere', headers: { 'x-forwarded-for': `10.0.0.${i}, 203.0.113.5` } })
    statuses.push(res.statusCode)
  }
  t.same(statuses, [404, 404, 404, 429, 429, 429], 'one address, one ceiling')
})

t.test('a forwarded address that is not an IP gets 400 JSON', async (t) => {
  const app = await build(t, { TRUST_PROXY: '127.0.0.1' })
  for (const value of ['not-an-ip', 'x'.repeat(5000), '1.2.3.4:80', '', '999.1.1.1']) {
    const res = await app.inject({ url: '/health', headers: { 'x-forwarded-for': value } })
    if (value === '') {
      t.equal(res.statusCode, 200, 'an empty header leaves the socket address')
      continue
    }
    t.same({ status: res.statusCode, code: res.json().code }, { status: 400, code: 'GW_CLIENT_ADDRESS' }, `X-Forwarded-For ${JSON.stringify(value.slice(0, 20))}: 400`)
    t.ok(res.json().message.length < 200, 'the message quotes at most 64 characters of it')
  }
  const good = await app.inject({ url: '/health', headers: { 'x-forwarded-for': '2001:db8::1' } })
  t.equal(good.statusCode, 200, 'an IPv6 address is fine')
})
