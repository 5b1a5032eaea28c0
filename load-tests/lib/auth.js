// Test users: only `load_test_`-prefixed names (the auth stub creates them on first login with the password
// they bring), unique per run so runs never share state.
import { check } from 'k6'
import { post, json } from './http.js'

export const TEST_USER_PREFIX = 'load_test_'
export const TEST_PASSWORD = 'load-test-password'

/** A run id, made once in setup() and handed to every VU through its data (each VU has its own init context). */
export const newRunId = () => __ENV.RUN_ID || Date.now().toString(36)

/** `load_test_<tag>_<runId>_<n>`. */
export function userName (runId, tag, n) {
  return `${TEST_USER_PREFIX}${tag}_${runId}_${n}`
}

/** Logs a test user in; returns { userId, token } or throws with what the gateway answered. */
export function login (username, { password = TEST_PASSWORD, ip, tags } = {}) {
  if (!username.startsWith(TEST_USER_PREFIX)) throw new Error(`refusing to log in "${username}": load tests use ${TEST_USER_PREFIX}* users only`)
  const res = post('/auth/login', {}, { body: { username, password }, ip, tags })
  const ok = check(res, { 'a load_test_ user logs in': (r) => r.status === 200 && typeof json(r)?.token === 'string' })
  if (!ok) throw new Error(`login of ${username} answered ${res.status}: ${String(res.body).slice(0, 300)}`)
  return { userId: username, token: json(res).token }
}

/** Logs in `count` users `load_test_<tag>_<runId>_<0..count-1>`, each from its own client address when `ipOf` is given. */
export function loginUsers (runId, tag, count, ipOf) {
  const users = []
  for (let n = 0; n < count; n++) users.push(login(userName(runId, tag, n), { ip: ipOf ? ipOf(n) : undefined }))
  return users
}
