import t from 'tap'
import { build, startStub } from '../helper.js'

// Security issue 12, finding 2: self-signup of load_test_* users is a lab feature, off unless STUB_SIGNUP=load_test.
// Before the fix any load_test_* login created the user (200 here instead of 401).
t.test('without STUB_SIGNUP a load_test_ login is an unknown user; with it the user is created', async (t) => {
  const login = async (authUrl: string, username: string) => {
    const app = await build(t, { AUTH_URL: authUrl })
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: 'any-password' } })
    return { status: res.statusCode, code: res.json().code }
  }
  const off = await startStub('auth', { STUB_SIGNUP: '' })
  t.teardown(() => off.stop())
  t.same(await login(off.url, 'load_test_sybil_1'), { status: 401, code: 'GW_INVALID_CREDENTIALS' }, 'signup off (the default): 401')

  const on = await startStub('auth', { STUB_SIGNUP: 'load_test' })
  t.teardown(() => on.stop())
  t.same(await login(on.url, 'load_test_sybil_1'), { status: 200, code: undefined }, 'STUB_SIGNUP=load_test: created on first login')
})
