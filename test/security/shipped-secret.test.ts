import t from 'tap'
import { goodClaims, hs256, SHIPPED_SECRETS } from '../fixtures/hostile-corpus.js'
import { startGateway, ROOT } from '../../scripts/lib/stack.mjs'
import { join } from 'node:path'
import { once } from 'node:events'
import { spawn } from 'node:child_process'

// Security issue 12, finding 1: no constant that ships in the repository signs a token a default start accepts, and a
// non-loopback HOST without JWT_SECRET does not start. Before the fix the gateway defaulted to a constant: a token
// signed with it for {"sub":"demo"} read demo's balance (here: 200/502 instead of 401), and HOST=0.0.0.0 started.
t.test('a gateway started without JWT_SECRET refuses tokens signed with every shipped constant', async (t) => {
  const env: Record<string, string> = { ...process.env as Record<string, string>, LOG_LEVEL: 'warn' }
  delete env.JWT_SECRET
  const gateway = await startGateway({ ...env, JWT_SECRET: '' }, { output: 'capture' })
  t.teardown(() => gateway.stop())
  t.match(gateway.output(), /JWT_SECRET not set: using a random value generated at start/, 'it says once at start that it generated the secret')
  const now = Math.floor(Date.now() / 1000)
  for (const [what, secret] of SHIPPED_SECRETS) {
    const token = hs256(goodClaims('demo', now), secret)
    const res = await fetch(`${gateway.url}/users/demo`, { headers: { authorization: `Bearer ${token}` } })
    t.same({ status: res.status, code: (await res.json() as { code: string }).code }, { status: 401, code: 'GW_UNAUTHORIZED' }, `a token for demo signed with ${what}: 401`)
  }
})

t.test('HOST=0.0.0.0 without JWT_SECRET exits 1 naming JWT_SECRET', async (t) => {
  const env: Record<string, string> = { ...process.env as Record<string, string>, HOST: '0.0.0.0', PORT: '0', STUB_CREDENTIAL: 'c'.repeat(40) }
  delete env.JWT_SECRET
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const [code] = await once(child, 'exit')
  clearTimeout(timer)
  t.equal(code, 1, 'it exits 1 instead of listening')
  t.match(stderr, /JWT_SECRET must be set when listening on 0\.0\.0\.0/, `the message names the variable: ${stderr.trim()}`)
})
