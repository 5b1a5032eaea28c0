// npm run keys: create / list / revoke against Redis and against the embedded mode's keys file; gateways see the change.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../../scripts/lib/stack.mjs'
import { gatewayProcessFor, JWT_SECRET, redisFor, waitFor } from '../helper.js'
import { spendOver } from './helper.js'

const run = promisify(execFile)
const keys = async (env: Record<string, string>, ...args: string[]) => {
  const { stdout } = await run(process.execPath, [join(ROOT, 'scripts', 'keys.mjs'), ...args], { env: { PATH: process.env.PATH, JWT_SECRET, ...env } })
  return JSON.parse(stdout)
}

for (const store of ['redis', 'file'] as const) {
  t.test(`create, use, list, revoke from the CLI (${store})`, async (t) => {
    let env: Record<string, string>
    if (store === 'redis') {
      env = { REDIS_URL: (await redisFor(t)).url }
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'gw-keys-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      env = { AGENT_KEYS_FILE: join(dir, 'keys.json') }
    }
    const created = await keys(env, 'create', 'agent-cli.1', '--expires-in', '3600')
    t.match(created, { agentId: 'agent-cli.1', tier: 'default', key: /^gwk_/, keyId: /^[0-9a-f]{16}$/ })
    if (store === 'file') t.notOk(readFileSync(env.AGENT_KEYS_FILE!, 'utf8').includes(created.key), 'the file holds the HMAC, never the key')

    const gateway = await gatewayProcessFor(t, { AGENT_AUTH: 'key', ...env })
    t.equal((await spendOver(gateway.url, 2, { key: created.key })).status, 200, 'the gateway accepts the CLI\'s key')
    t.same((await keys(env, 'list', 'agent-cli.1')).map((k: { keyId: string }) => k.keyId), [created.keyId])
    t.same(await keys(env, 'revoke', created.keyId), { revoked: created.keyId, agentId: 'agent-cli.1' })
    const revokedAt = Date.now()
    await waitFor(async () => (await spendOver(gateway.url, 1, { key: created.key })).status === 401, { timeoutMs: 3000, what: 'the revoked key refused' })
    t.ok(Date.now() - revokedAt <= 1000, `the running gateway refuses it within 1 s (${Date.now() - revokedAt} ms)`)
    await t.rejects(keys(env, 'create', 'agent{1}'), /must match/, 'braces refused by the CLI too')
  })
}
