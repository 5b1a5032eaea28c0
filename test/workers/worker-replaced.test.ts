import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Pool } from 'undici'
import { gatewayProcessFor, redisFor, stubsFor, waitFor } from '../helper.js'
import { jsonLines, waitForWorkers, workerPids } from './workers-helper.js'

// A worker SIGKILLed mid-load: every security event a client got an answer for is in the shared audit file, the
// primary forks a replacement, and the gateway keeps answering.
t.test('a killed worker is replaced, and no audit line a client saw is lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-worker-kill-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.log')
  const redis = await redisFor(t)
  const stubs = await stubsFor(t, {}, []) // tokenless requests are refused before any upstream
  const gateway = await gatewayProcessFor(t, {
    ...stubs.gatewayEnv, REDIS_URL: redis.url, GATEWAY_WORKERS: '2', AUDIT_LOG_PATH: path, RATE_LIMIT_MAX: '1000000', LOG_LEVEL: 'warn'
  }, { output: 'capture', timeoutMs: 60_000 })
  const before = await waitForWorkers(gateway.process.pid!, 2)

  // Denied requests (no token: 401 access_denied, written at once) on 32 connections; one worker dies at the 600th.
  const TOTAL = 1500
  const KILL_AT = 600
  // A connection handed to the worker as it died can stay unanswered: a bounded wait makes it one of the cut ones.
  const pool = new Pool(gateway.url, { connections: 32, headersTimeout: 10_000, bodyTimeout: 10_000 })
  t.teardown(() => pool.destroy())
  const answered: string[] = []
  let failed = 0
  await Promise.all(Array.from({ length: TOTAL }, async (_, i) => {
    const id = `wk-${i}`
    try {
      const res = await pool.request({ method: 'GET', path: '/users/load_test_wk', headers: { 'x-request-id': id } })
      await res.body.dump()
      if (res.statusCode === 401) answered.push(id)
      if (answered.length === KILL_AT) process.kill(before[0], 'SIGKILL')
    } catch { failed++ } // cut by the kill: no answer, no claim on the log
  }))
  t.ok(answered.length >= KILL_AT, `${answered.length} answered 401, ${failed} cut by the kill`)

  const after = await waitFor(() => { const pids = workerPids(gateway.process.pid!); return pids.length === 2 && !pids.includes(before[0]) && pids }, { timeoutMs: 20_000, what: 'a replacement worker' })
  t.ok(after.includes(before[1]), 'the other worker kept running')
  await waitFor(() => jsonLines(gateway.output()).some((l) => l.msg === 'worker exited; replacing it' && l.workerPid === before[0]),
    { timeoutMs: 5000, what: 'the crash logged' })
  // The replacement serves too: enough new connections reach both workers.
  const fresh = new Pool(gateway.url, { connections: 8 })
  t.teardown(() => fresh.destroy())
  const statuses = await Promise.all(Array.from({ length: 40 }, async () => {
    const res = await fresh.request({ method: 'GET', path: '/health' })
    await res.body.dump()
    return res.statusCode
  }))
  t.same([...new Set(statuses)], [200], 'the gateway answers after the replacement')

  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { reqId: string, type: string })
  const logged = new Set(lines.filter((l) => l.type === 'access_denied').map((l) => l.reqId))
  const missing = answered.filter((id) => !logged.has(id))
  t.same(missing.slice(0, 5), [], `answered events missing from the audit file: ${missing.length} of ${answered.length}`)
  t.equal(logged.size, lines.length, 'no line written twice, every line whole JSON')
})
