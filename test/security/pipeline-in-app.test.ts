// Issue 15 (the request pipeline in one place): what server.ts used to add after the build now comes with
// buildGateway. An answer in flight when close() starts ends its keep-alive socket (`Connection: close`), so close()
// does not wait for the keep-alive timeout. Before the move, an app built with buildGateway answered
// `connection: keep-alive` here (only server.ts's process had the hook).
import t from 'tap'
import { Pool } from 'undici'
import { build, login, servedCount, setFault, stubsFor, waitFor } from '../helper.js'

t.test('buildGateway alone: an answer in flight at close() says Connection: close', async (t) => {
  const stubs = await stubsFor(t, { STUB_SIGNUP: 'load_test' }, ['auth', 'user'])
  const app = await build(t, { ...stubs.gatewayEnv, KEEP_ALIVE_TIMEOUT_MS: '60000' })
  const user = 'load_test_pipeline'
  const auth = await login(app, user)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 })
  t.teardown(() => pool.destroy())

  await setFault(stubs.user, 'slow', 700)
  const before = await servedCount(stubs.user)
  const answer = pool.request({ method: 'GET', path: `/users/${user}`, headers: auth })
  await waitFor(async () => await servedCount(stubs.user) > before, { timeoutMs: 5000, what: 'the request to reach the user stub' })
  const started = Date.now()
  const closed = app.close()
  const res = await answer
  t.same({ status: res.statusCode, connection: res.headers.connection, body: await res.body.json() },
    { status: 200, connection: 'close', body: { id: user, balance: 0 } }, 'the request in flight completes, on a closing connection')
  await closed
  t.ok(Date.now() - started < 5000, `close() finished in ${Date.now() - started} ms, not after the 60 s keep-alive timeout`)
})
