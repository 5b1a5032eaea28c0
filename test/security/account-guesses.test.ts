import t from 'tap'
import { build, sample, stubsFor } from '../helper.js'

// Security issue 12 (finding 9, last item): guesses per account across addresses are bounded by
// RATE_LIMIT_LOGIN_ACCOUNT_MAX per RATE_LIMIT_LOGIN_WINDOW_MS. Before the fix only ip:username was counted: 100
// addresses × 10 guesses = 1 000 guesses a minute on one account (all 401, no 429).
t.test('one account guessed from 100 addresses gets RATE_LIMIT_LOGIN_ACCOUNT_MAX guesses a window', async (t) => {
  const stubs = await stubsFor(t, {}, ['auth'])
  const app = await build(t, { ...stubs.gatewayEnv, RATE_LIMIT_LOGIN_ACCOUNT_MAX: '20', RATE_LIMIT_LOGIN_WINDOW_MS: '60000' })
  const started = Date.now()
  const statuses: number[] = []
  for (let a = 0; a < 100; a++) {
    for (let g = 0; g < 3; g++) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: `198.51.100.${a}`, payload: { username: 'demo', password: `guess-${a}-${g}` } })
      statuses.push(res.statusCode)
    }
  }
  const minutes = (Date.now() - started) / 60_000
  const guesses = statuses.filter((s) => s === 401).length
  t.comment(`${guesses} guesses reached the auth stub in ${(minutes * 60).toFixed(1)} s from 100 addresses (${statuses.length} attempts): ${guesses} guesses/min/account at most`)
  t.equal(guesses, 20, 'exactly RATE_LIMIT_LOGIN_ACCOUNT_MAX guesses were checked')
  t.equal(statuses.filter((s) => s === 429).length, statuses.length - 20, 'every other attempt got 429')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '203.0.113.1', payload: { username: 'demo', password: 'demo-password' } })).statusCode, 429, 'the right password from a fresh address waits too: the account is limited, not the address')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '203.0.113.1', payload: { username: 'load_test_other', password: 'pw' } })).statusCode, 200, 'another account is not limited')
  t.equal(sample((await app.inject({ url: '/metrics' })).body, 'gateway_rate_limited_total', { limiter: 'login_account' }), statuses.length - 20 + 1, 'counted under limiter="login_account"')
})
