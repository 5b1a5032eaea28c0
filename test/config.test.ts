import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { loadConfig } from '../src/config.js'
import { ROOT } from '../scripts/lib/stack.mjs'

t.test('defaults match the contract', async (t) => {
  const config = loadConfig({})
  t.match(config, { HOST: '127.0.0.1', PORT: 3000, RATE_LIMIT_MAX: 1000, RATE_LIMIT_WINDOW_MS: 60000, BREAKER_RESET_TIMEOUT_MS: 60000, LOCK_TTL_MS: 5000, AUTH_PORT: 3001, USER_PORT: 3002, ORDER_PORT: 3003 })
  t.equal(config.REDIS_URL, undefined)
})

t.test('a bad value is refused with the variable name', async (t) => {
  for (const [name, value] of [['PORT', 'abc'], ['RATE_LIMIT_MAX', '0'], ['REDIS_URL', 'localhost:6379'], ['RATE_LIMIT_ON_REDIS_ERROR', 'maybe'], ['JWT_SECRET', 'short']]) {
    t.throws(() => loadConfig({ [name]: value }), new RegExp(name), `${name}=${value}`)
  }
})

t.test('the gateway process exits non-zero naming the variable', async (t) => {
  const run = spawnSync(process.execPath, [join(ROOT, 'dist/src/server.js')], { env: { ...process.env, PORT: '99999' }, encoding: 'utf8', timeout: 20_000 })
  t.equal(run.status, 1)
  t.match(run.stderr, /invalid configuration: .*PORT/)
  const stub = spawnSync(process.execPath, [join(ROOT, 'dist/src/services/user/main.js')], { env: { ...process.env, LOCK_TTL_MS: '-1' }, encoding: 'utf8', timeout: 20_000 })
  t.equal(stub.status, 1)
  t.match(stub.stderr, /LOCK_TTL_MS/)
})
