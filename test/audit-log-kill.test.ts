import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Pool } from 'undici'
import { gatewayProcessFor, stubsFor } from './helper.js'

// A security event whose answer reached the client is on disk, even when the gateway dies by SIGKILL mid-load
// (no flush on exit can help there): the chaos harness lost such events while audit lines were written later.
t.test('SIGKILL mid-load: every event whose answer reached the client is in the audit file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-audit-kill-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.log')
  const stubs = await stubsFor(t, {}, []) // tokenless requests are refused before any upstream
  const gateway = await gatewayProcessFor(t, { ...stubs.gatewayEnv, AUDIT_LOG_PATH: path, RATE_LIMIT_MAX: '1000000', LOG_LEVEL: 'error' })

  // Denied requests (no token: 401 access_denied) from 64 connections; the gateway is killed at the 1500th answer.
  const TOTAL = 3000
  const KILL_AT = 1500
  const pool = new Pool(gateway.url, { connections: 64 })
  t.teardown(() => pool.destroy())
  const answered: string[] = []
  await Promise.all(Array.from({ length: TOTAL }, async (_, i) => {
    const id = `kill-${i}`
    try {
      const res = await pool.request({ method: 'GET', path: '/users/load_test_kill', headers: { 'x-request-id': id } })
      await res.body.dump()
      if (res.statusCode === 401) answered.push(id)
      if (answered.length === KILL_AT) gateway.process.kill('SIGKILL')
    } catch {} // requests cut by the kill have no answer, so no claim on the log
  }))
  if (gateway.process.exitCode === null && gateway.process.signalCode === null) await once(gateway.process, 'exit')
  t.ok(answered.length >= KILL_AT, `${answered.length} requests answered 401 before the kill took effect`)

  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { reqId: string, type: string })
  const logged = new Set(lines.filter((l) => l.type === 'access_denied').map((l) => l.reqId))
  const missing = answered.filter((id) => !logged.has(id))
  t.same(missing.slice(0, 5), [], `answered access_denied events missing after SIGKILL: ${missing.length} of ${answered.length}`)
  t.equal(logged.size, lines.length, 'no event written twice')
})
