#!/usr/bin/env node
// `npm run chaos`: three gateway processes on one Redis under mixed load while Redis, the user stub, the order stub
// and one gateway are killed for real (SIGKILL), one after the other; then the ground truth (Redis via the stubs, the
// three audit logs) is compared with what the clients saw. Prints a table, writes results/chaos.json, exits 1 when a
// check fails (2 when the run broke). docs/CHAOS.md explains the checks and the table.
//
//   npm run chaos -- --short        CI form (or CHAOS_PROFILE=ci): 40 s of load
//   CHAOS_DURATION_S=300 npm run chaos   full form (default 180 s); CHAOS_RATE, CHAOS_CONCURRENCY tune the load
//   --report [path]                 also writes the printed tables to docs/CHAOS-RESULTS.md (or path)
//
// Everything listens on 127.0.0.1 on free ports and is torn down at the end, also on failure or Ctrl-C.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { LAB_STUB_CREDENTIAL, ROOT, reapOnExit, startRedis, startStub, startGateway, waitFor } from './lib/stack.mjs'
import { createFleet, createPacer, send, runWorkers, sleep, table, percentile } from './lib/loadgen.mjs'
import { reportPath, writeResultsPage } from './lib/report.mjs'

const SHORT = process.argv.includes('--short') || process.env.CHAOS_PROFILE === 'ci'
const REPORT = reportPath(process.argv, 'docs/CHAOS-RESULTS.md') // --report [path]: also write the printed tables there
const PROFILE = SHORT ? 'ci' : 'full'
const DURATION_S = Number(process.env.CHAOS_DURATION_S ?? (SHORT ? 40 : 180))
const CONCURRENCY = Number(process.env.CHAOS_CONCURRENCY ?? 8)
// The mixed workers' pace (requests per second, the limit probes come on top): about 3 per user and second, under the
// 5 per second limit, so most answers are real work rather than 429s, and a shared machine keeps some CPU to spare.
const RATE = Number(process.env.CHAOS_RATE ?? 160)
const JWT_SECRET = process.env.JWT_SECRET && process.env.JWT_SECRET.length >= 32 ? process.env.JWT_SECRET : 'chaos-secret-0123456789-0123456789-abcdef'
const INSTANCES = 3
const RL = { max: 10, windowMs: 2000 } // small, so limits are hit all the time
const LIMIT_KEYS = 4 // users whose only traffic is rounds of 3 × max requests: the exactness probes
const LIMIT_INFLIGHT = 5
const USERS = SHORT ? 48 : 96
const VICTIMS = 3 // users whose password is guessed (401 login_failure, then 429 from the login limiter)
const REDIS_DOWN_MS = 3000
const STUB_DOWN_MS = 2000
const LOCK_TTL_MS = 5000
const MIN_GAP_MS = 4000 // each fault starts at least this long after the previous one was repaired, so recovery shows
// A fault's window, whose 5xx are excused, runs from the kill to GRACE_MS after the system could be whole again: for
// Redis or a stub, once it (and, for Redis, the stubs' own Redis clients) is back and the breakers that opened meanwhile
// may half-open (BREAKER_RESET_MS after their last failure); for the gateway kill, its first GRACE_MS.
const GRACE_MS = 1000
const BREAKER_RESET_MS = 500
const MAX_5XX_RATIO = 0.001
const CLIENT_TIMEOUT_MS = 10_000
const RUN = Date.now().toString(36)

// Processes, and their teardown on every path out
const { track, killAll } = reapOnExit('chaos')

const log = (msg) => console.log(`[chaos ${((Date.now() - (t0 || Date.now())) / 1000).toFixed(1).padStart(6)} s] ${msg}`)
let t0 = 0

let redis, stubs, gateways, fleet
const dir = mkdtempSync(join(tmpdir(), 'gw-chaos-'))

// ---------------------------------------------------------------------------------------------------------------
async function run () {
  let seq = 0
  const nextId = () => `c-${RUN}-${++seq}`
  const records = []
  const request = async (spec, inst) => {
    const record = await send(fleet, { ...spec, id: nextId() }, inst)
    record.user = spec.user
    records.push(record)
    return record
  }
  const bearer = (u) => ({ authorization: `Bearer ${u.token}` })

  // --- users: normal ones (mixed traffic), limit-key probes, brute-force victims
  const mk = (name) => ({ name, password: `pw-${name}`, token: '', ackedNet: 0, unknown: [], orders: [], lastLogin: 0 })
  const users = Array.from({ length: USERS }, (_, i) => mk(`load_test_cx_${RUN}_${i}`))
  const limitUsers = Array.from({ length: LIMIT_KEYS }, (_, i) => mk(`load_test_rl_${RUN}_${i}`))
  const victims = Array.from({ length: VICTIMS }, (_, i) => mk(`load_test_victim_${RUN}_${i}`))
  for (const u of [...users, ...limitUsers, ...victims]) {
    const r = await waitFor(async () => {
      const res = await request({ kind: 'login', method: 'POST', path: '/auth/login', json: { username: u.name, password: u.password } })
      return res.status === 200 ? res : undefined
    }, { timeoutMs: 30_000, what: `login of ${u.name}` })
    u.token = r.body.token
    u.lastLogin = Date.now()
  }
  const setupRecords = records.length
  log(`${setupRecords} users logged in`)

  // --- load
  t0 = Date.now()
  const endAt = t0 + DURATION_S * 1000
  let stopped = false
  let faultsDoneAt = Infinity
  // The load runs its duration and at least MIN_GAP_MS past the last fault, however late a slow restart made it.
  const stop = () => stopped || (Date.now() >= endAt && Date.now() >= faultsDoneAt + MIN_GAP_MS)
  const faults = []
  const rounds = []
  const pace = createPacer(RATE)
  const pick = (list) => list[Math.floor(Math.random() * list.length)]
  const amount = (max) => 1 + Math.floor(Math.random() * max)
  const OPS = [['deposit', 26], ['withdraw', 18], ['contend', 3], ['order', 14], ['balance', 12], ['quota', 10], ['forbidden', 4], ['unauth', 3],
    ['badlogin', 4], ['relogin', 2], ['foreignorder', 3], ['readorder', 2]]
  const totalWeight = OPS.reduce((a, [, w]) => a + w, 0)
  const pickOp = () => { let x = Math.random() * totalWeight; for (const [op, w] of OPS) { if ((x -= w) < 0) return op } return 'balance' }
  const ackedOrders = [] // { user, orderId }
  let itemSeq = 0

  // Each worker drives its own users, so two writes of one user only meet on purpose (the "contend" pairs).
  async function mixed (worker) {
    const u = pick(users.filter((_, i) => i % CONCURRENCY === worker))
    const op = pickOp()
    const req = (spec) => request({ ...spec, user: u.name })
    switch (op) {
      case 'deposit':
      case 'withdraw': {
        const value = amount(op === 'deposit' ? 100 : 120)
        const r = await req({ kind: op, method: 'POST', path: `/users/${u.name}/${op}`, headers: bearer(u), json: { amount: value } })
        settleWrite(u, r, op === 'deposit' ? value : -value)
        return
      }
      case 'contend': {
        // Two deposits of one user at once: one takes the lock, the other gets 503 GW_USER_LOCKED (or both pass in turn).
        const values = [amount(100), amount(100)]
        const pair = await Promise.all(values.map((value) => req({ kind: 'contend', method: 'POST', path: `/users/${u.name}/deposit`, headers: bearer(u), json: { amount: value } })))
        pair.forEach((r, i) => settleWrite(u, r, values[i]))
        return
      }
      case 'order': {
        const item = `item-${RUN}-${++itemSeq}`
        const r = await req({ kind: 'order', method: 'POST', path: '/orders', headers: bearer(u), json: { userId: u.name, item, quantity: amount(3), unitPrice: amount(500) } })
        const fate = writeFate(r)
        u.orders.push({ item, fate, orderId: r.status === 201 ? r.body.orderId : undefined, id: r.id })
        if (r.status === 201) ackedOrders.push({ user: u, orderId: r.body.orderId })
        return
      }
      case 'balance': await req({ kind: 'balance', method: 'GET', path: `/users/${u.name}`, headers: bearer(u) }); return
      case 'quota': await req({ kind: 'quota', method: 'POST', path: '/api/request', headers: bearer(u), json: { agentId: `agent_${RUN}_${Math.floor(Math.random() * 4)}`, tokens: amount(5) } }); return
      case 'forbidden': await req({ kind: 'forbidden', method: 'GET', path: `/users/${pick(users.filter((x) => x !== u)).name}`, headers: bearer(u) }); return
      case 'unauth': {
        const forged = Math.random() < 0.5 ? { authorization: `${bearer(u).authorization.slice(0, -6)}AAAAAA` } : {}
        await req({ kind: 'unauth', method: 'GET', path: `/users/${u.name}`, headers: forged })
        return
      }
      case 'badlogin': {
        const v = pick(victims)
        await req({ kind: 'badlogin', method: 'POST', path: '/auth/login', json: { username: v.name, password: `wrong-${seq}` } })
        return
      }
      case 'relogin': {
        if (Date.now() - u.lastLogin < 15_000) return mixed(worker)
        u.lastLogin = Date.now()
        const r = await req({ kind: 'login', method: 'POST', path: '/auth/login', json: { username: u.name, password: u.password } })
        if (r.status === 200) u.token = r.body.token
        return
      }
      case 'foreignorder':
      case 'readorder': {
        const own = op === 'readorder'
        const candidates = ackedOrders.filter((o) => (o.user === u) === own)
        if (candidates.length === 0) return req({ kind: 'balance', method: 'GET', path: `/users/${u.name}`, headers: bearer(u) })
        await req({ kind: op, method: 'GET', path: `/orders/${pick(candidates).orderId}`, headers: bearer(u) })
      }
    }
  }

  // Limit probes: rounds of 3 × max requests on one key, spread over the instances; the next round starts once the
  // window the last request may have opened is over, so each round sits in a known number of windows.
  async function limitProbe (u, k) {
    while (!stop()) {
      const round = { key: u.name, firstSend: Date.now(), records: [] }
      let issued = 0
      await runWorkers(LIMIT_INFLIGHT, () => issued >= RL.max * 3, async () => {
        issued++
        round.records.push(await request({ kind: 'limit', method: 'GET', path: `/api/quota/agent_rl_${RUN}_${k}`, headers: bearer(u) }))
      })
      round.lastDone = Math.max(...round.records.map((r) => r.doneAt))
      rounds.push(round)
      const wait = round.lastDone + RL.windowMs + 200 - Date.now()
      if (wait > 0) await sleep(wait)
    }
  }

  const at = (fraction) => t0 + fraction * DURATION_S * 1000
  const until = async (time) => {
    const previous = faults.at(-1)
    const ms = Math.max(time, previous ? previous.repairedAt + MIN_GAP_MS : 0) - Date.now()
    if (ms > 0) await sleep(ms)
  }
  async function scheduleFaults () {
    await until(at(0.15))
    {
      const f = { name: 'redis SIGKILL', target: 'redis', injectedAt: Date.now() }
      faults.push(f)
      log(`fault: SIGKILL redis-server for ${REDIS_DOWN_MS} ms`)
      await redis.kill('SIGKILL')
      await sleep(REDIS_DOWN_MS)
      f.restartAt = Date.now()
      await redis.start()
      f.repairedAt = Date.now()
      // The stubs keep their state in Redis too: the fault is over when they answer from it again.
      const probe = users[0].name
      // Asked directly, as the gateway would: the stubs answer its credential only.
      const serves = async (url) => (await fetch(url, { headers: { 'x-gateway-credential': LAB_STUB_CREDENTIAL }, signal: AbortSignal.timeout(1000) })).status === 200
      await waitFor(async () => await serves(`${stubs.user.url}/users/${probe}`) && await serves(`${stubs.order.url}/users/${probe}/orders`),
        { timeoutMs: 15_000, what: 'the stubs to serve from Redis again' })
      f.dependentsAt = Date.now()
      log(`redis restarted (ready in ${f.repairedAt - f.restartAt} ms, AOF kept the data; the stubs served from it ${f.dependentsAt - f.repairedAt} ms later)`)
    }
    for (const [name, fraction] of [['user', 0.38], ['order', 0.55]]) {
      await until(at(fraction))
      const stub = stubs[name]
      const f = { name: `${name} stub SIGKILL`, target: name, injectedAt: Date.now() }
      faults.push(f)
      log(`fault: SIGKILL the ${name} stub for ${STUB_DOWN_MS} ms`)
      await stub.kill('SIGKILL')
      await sleep(STUB_DOWN_MS)
      f.restartAt = Date.now()
      await stub.start()
      f.repairedAt = Date.now()
      log(`${name} stub restarted on port ${stub.port} (in ${f.repairedAt - f.restartAt} ms)`)
    }
    await until(at(0.72))
    {
      const victim = gateways[INSTANCES - 1]
      const f = { name: `gateway #${INSTANCES - 1} SIGKILL`, target: 'gateway', instance: INSTANCES - 1, injectedAt: Date.now() }
      faults.push(f)
      log(`fault: SIGKILL gateway #${INSTANCES - 1} (port ${victim.port}); it stays down`)
      victim.process.kill('SIGKILL')
      await once(victim.process, 'exit')
      f.repairedAt = f.injectedAt // nothing is repaired: the survivors must carry the load from here on
    }
    faultsDoneAt = Date.now()
  }

  const progress = setInterval(() => {
    const recent = records.filter((r) => r.doneAt > Date.now() - 5000)
    log(`${records.length - setupRecords} requests, last 5 s: ${(recent.length / 5).toFixed(0)}/s, ` +
      `5xx ${recent.filter((r) => r.status >= 500).length}, no answer ${recent.filter((r) => r.outcome !== 'response').length}`)
  }, 5000)
  try {
    await Promise.all([
      runWorkers(CONCURRENCY, stop, async (worker) => { await pace(); if (!stop()) await mixed(worker) }),
      ...limitUsers.map((u, k) => limitProbe(u, k)),
      scheduleFaults()
    ])
  } finally {
    stopped = true
    clearInterval(progress)
  }
  const loadEnd = Date.now()
  log(`load done: ${records.length - setupRecords} requests in ${((loadEnd - t0) / 1000).toFixed(1)} s`)

  // --- after the load: who is still alive, then a graceful stop of the survivors (it flushes their audit logs)
  const survivors = gateways.filter((_, i) => i !== INSTANCES - 1)
  const crashed = survivors.filter((g) => g.process.exitCode !== null || g.process.signalCode !== null)
  const stubCrashes = Object.values(stubs).filter((s) => s.process.exitCode !== null || s.process.signalCode !== null).map((s) => s.name)
  const stopCodes = await Promise.all(survivors.map(async (g) => {
    if (g.process.exitCode !== null || g.process.signalCode !== null) return `dead (${g.process.exitCode ?? g.process.signalCode})`
    const started = Date.now()
    g.process.kill('SIGTERM')
    const [code, signal] = await Promise.race([once(g.process, 'exit'), sleep(15_000).then(() => ['timeout', null])])
    return `${code ?? signal} in ${Date.now() - started} ms`
  }))

  // --- ground truth
  const truth = await readGroundTruth(users)
  const audits = Array.from({ length: INSTANCES }, (_, i) => readAudit(join(dir, `audit-${i}.jsonl`)))
  const report = analyse({ records: records.slice(setupRecords), allRecords: records, users, rounds, faults, truth, audits, crashed, stubCrashes, stopCodes, loadEnd })
  await stubs.auth.stop(); await stubs.user.stop(); await stubs.order.stop()
  await redis.stop()
  return report
}

/** A write's fate from the client's seat: applied (acknowledged), not applied (certainly refused), or unknown. */
const NOT_APPLIED_5XX = new Set(['GW_USER_LOCKED', 'GW_LOCK_UNAVAILABLE', 'GW_CIRCUIT_OPEN', 'GW_RATE_LIMIT_UNAVAILABLE'])
function writeFate (r) {
  if (r.outcome === 'refused') return 'not_applied'
  if (r.outcome !== 'response') return 'unknown'
  if (r.status === 200 || r.status === 201) return 'applied'
  if (r.status < 500) return 'not_applied'
  if (r.status === 503 && NOT_APPLIED_5XX.has(r.code)) return 'not_applied' // refused before any upstream call
  return 'unknown' // 502/504/500: the upstream may have applied it before the failure
}
function settleWrite (u, r, delta) {
  const fate = writeFate(r)
  if (fate === 'applied') u.ackedNet += delta
  else if (fate === 'unknown') u.unknown.push({ delta, id: r.id, why: r.outcome === 'response' ? `${r.status} ${r.code}` : r.error })
}

async function readGroundTruth (users) {
  // Straight from the stubs (whose state is Redis), not through a gateway: no limiter, no breaker in the way.
  const userPool = new Pool(stubs.user.url, { connections: 4 })
  const orderPool = new Pool(stubs.order.url, { connections: 4 })
  try {
    const get = async (pool, path) => {
      const res = await pool.request({ method: 'GET', path, headers: { 'x-gateway-credential': LAB_STUB_CREDENTIAL } })
      if (res.statusCode !== 200) throw new Error(`GET ${path} answered ${res.statusCode}`)
      return res.body.json()
    }
    const truth = new Map()
    for (const u of users) {
      truth.set(u.name, { balance: (await get(userPool, `/users/${u.name}`)).balance, orders: await get(orderPool, `/users/${u.name}/orders`) })
    }
    return truth
  } finally {
    await userPool.close(); await orderPool.close()
  }
}

function readAudit (path) {
  if (!existsSync(path)) return []
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => {
    try { return JSON.parse(line) } catch { return { type: 'unparsable', line } }
  })
}

/** The security event a response must have left in the audit log, if any. */
function expectedAudit (r) {
  if (r.outcome !== 'response') return undefined
  if (r.kind === 'login' || r.kind === 'badlogin') {
    if (r.status === 200) return 'login_success'
    if (r.status === 401) return 'login_failure'
    if (r.status === 429) return 'rate_limit_exceeded'
    return undefined
  }
  return { GW_UNAUTHORIZED: 'access_denied', GW_FORBIDDEN: 'access_denied', GW_RATE_LIMITED: 'rate_limit_exceeded', GW_QUOTA_EXCEEDED: 'quota_exceeded', GW_USER_LOCKED: 'lock_conflict' }[r.code]
}

/** Sums reachable by applying any subset of the unknown deltas. */
function subsetSums (deltas) {
  let sums = new Set([0])
  for (const d of deltas) sums = new Set([...sums, ...[...sums].map((s) => s + d)])
  return sums
}

function analyse ({ records, allRecords, users, rounds, faults, truth, audits, crashed, stubCrashes, stopCodes, loadEnd }) {
  const checks = []
  const check = (name, pass, figure, bound) => checks.push({ name, pass: Boolean(pass), figure, bound })
  const rel = (t) => ((t - t0) / 1000).toFixed(1)

  // --- fault windows: from the injection to one second after the repair (for the gateway kill: its first second)
  const settledAt = (f) => f.target === 'gateway' ? f.injectedAt : (f.dependentsAt ?? f.repairedAt) + BREAKER_RESET_MS
  const windows = faults.map((f) => ({ ...f, from: f.injectedAt, to: settledAt(f) + GRACE_MS }))
  const inWindow = (r) => windows.some((w) => r.doneAt >= w.from && r.sentAt <= w.to)
  // A lock taken just before Redis or a gateway died cannot be released (fail-closed: releasing it blindly could let a
  // second write in); it expires by LOCK_TTL_MS. Its 503 GW_USER_LOCKED answers are checked against that TTL instead.
  const orphanWindows = faults.filter((f) => f.target === 'redis' || f.target === 'gateway').map((f) => ({ from: f.injectedAt, to: f.injectedAt + LOCK_TTL_MS + GRACE_MS }))
  const isOrphanLock = (r) => r.code === 'GW_USER_LOCKED' && orphanWindows.some((w) => r.doneAt >= w.from && r.sentAt <= w.to)

  // --- Redis outages as the gateways saw them: the injected one (kill → last redis_recovered), plus any spell an
  // instance spent on its fallback for another reason (a command over REDIS_COMMAND_TIMEOUT_MS on a starved machine)
  const redisFault = faults.find((f) => f.target === 'redis')
  const outages = []
  if (redisFault) {
    // Each instance leaves its fallback at its first Redis success after the restart.
    const perInstance = audits.map((events) => events.map((e) => e.type === 'redis_recovered' ? Date.parse(e.time) : NaN).find((t) => t >= redisFault.restartAt))
    const recovered = perInstance.filter((t) => t !== undefined)
    outages.push({ from: redisFault.injectedAt, to: (recovered.length ? Math.max(...recovered) : redisFault.repairedAt + 2000) + 100, injected: true, instances: recovered.length })
  }
  audits.forEach((events) => {
    let since
    for (const e of events) {
      const at = Date.parse(e.time)
      if (e.type === 'redis_degraded' && since === undefined) since = at
      if (e.type === 'redis_recovered' && since !== undefined) {
        if (!outages.some((o) => o.injected && at >= o.from && since <= o.to)) outages.push({ from: since - 600, to: at + 100, injected: false })
        since = undefined
      }
    }
    if (since !== undefined && !outages.some((o) => o.injected && since >= o.from && since <= o.to)) outages.push({ from: since - 600, to: Infinity, injected: false })
  })
  const outage = outages.find((o) => o.injected)
  const spontaneous = outages.filter((o) => !o.injected)

  // --- 1. global limit exactness
  const windowsOf = (round) => Math.floor((round.lastDone - round.firstSend) / RL.windowMs) + 1
  let normalRounds = 0; let normalOver = 0; let normalWindows = 0; let maxAdmittedNormal = 0
  let outageRounds = 0; let outageOverGlobal = 0; let outageOverBound = 0; let maxAdmittedOutage = 0; let maxOverOutage = 0
  for (const round of rounds) {
    const admitted = round.records.filter((r) => r.outcome === 'response' && r.status !== 429).length
    const w = windowsOf(round)
    const duringOutage = outages.some((o) => round.lastDone >= o.from && round.firstSend <= o.to)
    if (duringOutage) {
      outageRounds++
      maxAdmittedOutage = Math.max(maxAdmittedOutage, admitted)
      // fail-open: beyond what Redis admits (max per window), each instance's in-memory fallback admits up to its
      // local limit (max) per window, so the over-admission is bounded by max × instances per window
      const over = Math.max(0, admitted - RL.max * w)
      outageOverGlobal += over
      maxOverOutage = Math.max(maxOverOutage, over / w)
      outageOverBound += Math.max(0, over - RL.max * INSTANCES * w)
    } else {
      normalRounds++
      normalWindows += w
      maxAdmittedNormal = Math.max(maxAdmittedNormal, admitted / w)
      normalOver += Math.max(0, admitted - RL.max * w)
    }
  }
  check('global limit exact outside the Redis outage', normalRounds > 0 && normalOver === 0,
    `${normalRounds} rounds / ${normalWindows} windows on ${LIMIT_KEYS} keys, max admitted ${maxAdmittedNormal}/window, over-admits ${normalOver}`, `≤ ${RL.max}/window, 0 over`)
  check('fail-open over-admission bounded during the outage', outageRounds > 0 && outageOverBound === 0,
    `${outageRounds} rounds, max admitted ${maxAdmittedOutage} in a round, over-admitted ${outageOverGlobal} in all (counted), at most ${maxOverOutage.toFixed(0)}/window`,
    `over ≤ local ${RL.max} × ${INSTANCES} instances/window`)

  // --- 2. no double spend
  let exact = 0; let explained = 0; const mismatches = []
  let ackedWrites = 0; let unknownWrites = 0
  for (const u of users) {
    const { balance } = truth.get(u.name)
    const diff = balance - u.ackedNet
    unknownWrites += u.unknown.length
    if (u.unknown.length === 0) {
      if (diff === 0) exact++
      else mismatches.push({ user: u.name, balance, acked: u.ackedNet, unknown: [] })
    } else if (subsetSums(u.unknown.map((x) => x.delta)).has(diff)) explained++
    else mismatches.push({ user: u.name, balance, acked: u.ackedNet, unknown: u.unknown })
  }
  ackedWrites = records.filter((r) => (r.kind === 'deposit' || r.kind === 'withdraw') && r.status === 200).length
  const unknownDeposits = users.reduce((a, u) => a + u.unknown.filter((x) => x.delta > 0).reduce((s, x) => s + x.delta, 0), 0)
  const unknownWithdrawals = users.reduce((a, u) => a + u.unknown.filter((x) => x.delta < 0).reduce((s, x) => s - x.delta, 0), 0)
  check('no double spend: balance = Σ acknowledged (± unknown ops)', mismatches.length === 0,
    `${users.length} users: ${exact} exact, ${explained} explained by a subset of their ${unknownWrites} unknown ops ` +
    `(+${unknownDeposits}/−${unknownWithdrawals} cents at stake), ${mismatches.length} mismatched; ${ackedWrites} writes acked`, '0 mismatched')

  let ackedOrders = 0; let missing = 0; let duplicated = 0; let phantom = 0; let refusedButThere = 0; let unknownOrders = 0; let unknownCreated = 0
  for (const u of users) {
    const book = truth.get(u.name).orders
    const byItem = new Map()
    const ids = new Set()
    for (const o of book) {
      if (ids.has(o.orderId)) duplicated++
      ids.add(o.orderId)
      byItem.set(o.item, (byItem.get(o.item) ?? 0) + 1)
    }
    const attempted = new Set(u.orders.map((o) => o.item))
    for (const [item, n] of byItem) {
      if (n > 1) duplicated += n - 1
      if (!attempted.has(item)) phantom += n
    }
    for (const o of u.orders) {
      const n = byItem.get(o.item) ?? 0
      if (o.fate === 'applied') {
        ackedOrders++
        if (!book.some((b) => b.orderId === o.orderId && b.item === o.item)) missing++
      } else if (o.fate === 'not_applied') {
        if (n > 0) refusedButThere++
      } else {
        unknownOrders++
        if (n > 0) unknownCreated++
      }
    }
  }
  check('orders: none acknowledged and missing, none twice', missing === 0 && duplicated === 0 && phantom === 0 && refusedButThere === 0,
    `${ackedOrders} acked, ${missing} missing, ${duplicated} duplicated, ${phantom} phantom, ${refusedButThere} refused-but-created; ` +
    `${unknownOrders} unknown (${unknownCreated} of them created)`, '0 / 0 / 0 / 0')

  // --- 3. no lost audit event
  const byReq = new Map()
  audits.forEach((events, instance) => {
    for (const e of events) {
      if (!e.reqId) continue
      const list = byReq.get(e.reqId) ?? []
      list.push({ type: e.type, instance })
      byReq.set(e.reqId, list)
    }
  })
  const perType = {}
  let lost = 0; let twice = 0; let wrongInstance = 0; const lostOnKilled = []
  const killed = faults.find((f) => f.target === 'gateway')
  for (const r of allRecords) {
    const type = expectedAudit(r)
    if (!type) continue
    const row = perType[type] ??= { caused: 0, logged: 0, lost: 0, twice: 0 }
    row.caused++
    const found = (byReq.get(r.id) ?? []).filter((e) => e.type === type)
    if (found.length === 0) {
      row.lost++; lost++
      if (killed && r.inst === killed.instance) lostOnKilled.push(r.doneAt - killed.injectedAt)
      continue
    }
    row.logged++
    if (found.length > 1) { row.twice++; twice++ }
    if (found[0].instance !== r.inst) wrongInstance++
  }
  const causedTotal = Object.values(perType).reduce((a, r) => a + r.caused, 0)
  check('no lost audit event: each client-seen security answer logged once', lost === 0 && twice === 0 && wrongInstance === 0,
    `${causedTotal} caused (${Object.entries(perType).map(([t, r]) => `${t} ${r.logged}/${r.caused}`).join(', ')}); ` +
    `lost ${lost} (on the SIGKILLed instance ${lostOnKilled.length}${lostOnKilled.length ? `, answered ${Math.min(...lostOnKilled)}..${Math.max(...lostOnKilled)} ms from the kill` : ''}), twice ${twice}, other instance ${wrongInstance}`, '0 lost, 0 twice')

  // --- 4. no 5xx storm, no crash
  const responses = records.filter((r) => r.outcome === 'response')
  // A 503 GW_USER_LOCKED answering a deliberate pair is the lock doing its job (contention, not failure): counted apart.
  const contention = new Set(responses.filter((r) => r.kind === 'contend' && r.code === 'GW_USER_LOCKED'))
  const fivexx = responses.filter((r) => r.status >= 500 && !contention.has(r))
  const orphaned = fivexx.filter((r) => !inWindow(r) && isOrphanLock(r))
  // A user's write that meets the lock of that same user's previous write, already answered (by another instance):
  // the lock outlived the answer. Only the "contend" pairs overlap on purpose, and each worker owns its users.
  const previousOf = new Map()
  const byUser = new Map()
  for (const r of records) if (r.user) (byUser.get(r.user) ?? byUser.set(r.user, []).get(r.user)).push(r)
  for (const list of byUser.values()) {
    list.sort((a, b) => a.sentAt - b.sentAt)
    list.forEach((r, i) => { if (i > 0) previousOf.set(r, list[i - 1]) })
  }
  const WRITES = new Set(['deposit', 'withdraw', 'order', 'contend'])
  const stale = fivexx.filter((r) => {
    if (r.code !== 'GW_USER_LOCKED' || r.kind === 'contend' || inWindow(r) || isOrphanLock(r)) return false
    const previous = previousOf.get(r)
    return previous && WRITES.has(previous.kind) && previous.doneAt <= r.sentAt
  })
  const staleSet = new Set(stale)
  const unexcused = fivexx.filter((r) => !inWindow(r) && !isOrphanLock(r) && !staleSet.has(r))
  const ratio = responses.length ? unexcused.length / responses.length : 0
  const codes = (list) => Object.entries(list.reduce((acc, r) => { const k = `${r.status} ${r.code ?? ''}`.trim(); acc[k] = (acc[k] ?? 0) + 1; return acc }, {}))
    .sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}×${k}`).join(', ')
  check('no 5xx storm outside the fault windows', ratio <= MAX_5XX_RATIO,
    `${unexcused.length} of ${responses.length} answers (${(ratio * 100).toFixed(3)} %)${unexcused.length ? `: ${codes(unexcused)}` : ''}; ` +
    `in fault windows ${fivexx.length - unexcused.length - orphaned.length}; locks orphaned by a kill, until their TTL ${orphaned.length}; deliberate lock contention ${contention.size} × 503 GW_USER_LOCKED (not counted)`, `≤ ${MAX_5XX_RATIO * 100} %`)
  const gaps = stale.map((r) => r.sentAt - previousOf.get(r).doneAt)
  const staleDetail = stale.length
    ? ` sent ${Math.min(...gaps)}..${Math.max(...gaps)} ms after the same user's previous write was answered ` +
      `(${stale.filter((r) => r.inst !== previousOf.get(r).inst).length} on another instance): the lock is released after the answer is sent`
    : ''
  check('a write never meets the lock of its own already-answered previous write', stale.length === 0,
    `${stale.length} × 503 GW_USER_LOCKED${staleDetail}`, '0')
  // Outside the fault windows every request reaches a live gateway and gets an answer; the client's own retries of
  // the dead instance (refused connections, as a load balancer's health check would see) are the only exception.
  const gatewayKill = faults.find((f) => f.target === 'gateway')
  const unanswered = records.filter((r) => r.outcome !== 'response' && !inWindow(r) &&
    !(gatewayKill && r.inst === gatewayKill.instance && r.sentAt >= gatewayKill.injectedAt && r.outcome === 'refused'))
  check('every request to a live gateway answered outside the fault windows', unanswered.length === 0,
    `${unanswered.length}${unanswered.length ? `: ${unanswered.slice(0, 3).map((r) => `${r.method} ${r.path} on #${r.inst} ${r.outcome} ${r.error}`).join('; ')}` : ''}`, '0')
  const internal = responses.filter((r) => r.status === 500)
  check('no 500 Internal anywhere (a 500 is a gateway bug)', internal.length === 0, `${internal.length}${internal.length ? `: ${internal.slice(0, 3).map((r) => `${r.method} ${r.path} ${r.code}`).join('; ')}` : ''}`, '0')
  check('no gateway crash but the one killed on purpose', crashed.length === 0 && stubCrashes.length === 0,
    `${crashed.length} survivors crashed, stubs crashed: ${stubCrashes.join(', ') || 'none'}; survivors' SIGTERM → ${stopCodes.join(', ')}`, '0')
  check('survivors close gracefully on SIGTERM (exit 0)', stopCodes.every((c) => c.startsWith('0 ')), stopCodes.join(', '), 'exit 0')

  // --- 5. recovery after each fault: first success after the repair, of a request that needs what was broken
  const needs = {
    redis: new Set(['deposit', 'withdraw', 'contend', 'order', 'quota', 'limit', 'balance', 'login']),
    user: new Set(['deposit', 'withdraw', 'contend', 'balance']),
    order: new Set(['order', 'readorder']),
    gateway: new Set(['deposit', 'withdraw', 'contend', 'order', 'quota', 'limit', 'balance', 'login', 'readorder'])
  }
  const faultRows = faults.map((f) => {
    const relevant = records.filter((r) => needs[f.target].has(r.kind))
    const okAfter = relevant.filter((r) => r.sentAt >= f.repairedAt && r.outcome === 'response' && r.status < 400).sort((a, b) => a.doneAt - b.doneAt)[0]
    // The 5xx the storm check counts (outside every window, no orphaned or deliberate lock), from this fault's window
    // to the next fault: what the fault left behind once it was repaired.
    const w = windows.find((x) => x.name === f.name)
    const during = records.filter((r) => r.doneAt >= w.from && r.sentAt <= w.to)
    const deadHits = f.target === 'gateway' ? records.filter((r) => r.inst === f.instance && r.sentAt >= f.injectedAt).length : undefined
    const next = faults[faults.indexOf(f) + 1]
    const after5xx = unexcused.filter((r) => r.sentAt > w.to && (!next || r.sentAt < next.injectedAt))
    return {
      fault: f.name,
      at: rel(f.injectedAt),
      down: f.target === 'gateway'
        ? 'for good'
        : `${f.restartAt - f.injectedAt} ms + ${f.repairedAt - f.restartAt} ms start` +
        (f.dependentsAt ? ` + ${f.dependentsAt - f.repairedAt} ms stubs` : ''),
      window: `${rel(w.from)}–${rel(w.to)}`,
      recovery: okAfter ? okAfter.doneAt - f.repairedAt : null,
      fivexx: during.filter((r) => r.status >= 500).length,
      noAnswer: during.filter((r) => r.outcome !== 'response').length,
      deadHits,
      after5xx: after5xx.length
    }
  })
  for (const row of faultRows) {
    check(`recovered after ${row.fault}`, row.recovery !== null, row.recovery === null ? 'no success after the repair' : `first success ${row.recovery} ms after ${row.fault.includes('gateway') ? 'the kill' : 'the restart'}`, 'a success')
  }

  // --- print
  const byInstance = fleetSummary(records)
  const printed = []
  const out = (text) => { console.log(text); printed.push(text) }
  out(`\nchaos run: profile ${PROFILE}, ${DURATION_S} s of load, ${INSTANCES} gateways on one Redis, ${records.length} requests ` +
    `(${(records.length / ((loadEnd - t0) / 1000)).toFixed(0)}/s), p50 ${percentile(responses.map((r) => r.doneAt - r.sentAt), 50)} ms, ` +
    `p99 ${percentile(responses.map((r) => r.doneAt - r.sentAt), 99)} ms`)
  out(`per instance: ${byInstance}`)
  if (outage) out(`redis outage as the gateways saw it: ${rel(outage.from)} s → ${rel(outage.to)} s (redis_recovered on ${outage.instances} instances)`)
  if (spontaneous.length) out(`other fallback spells (Redis slower than its command timeout): ${spontaneous.map((o) => `${rel(o.from)}→${rel(o.to)} s`).join(', ')}`)
  out('\n' + table([
    ['fault', 'at (s)', 'down', 'window (s)', 'first success after (ms)', '5xx in window', 'no answer', 'hits on dead instance', '5xx after window'],
    ...faultRows.map((r) => [r.fault, r.at, r.down, r.window, r.recovery ?? 'never', r.fivexx, r.noAnswer, r.deadHits ?? '-', r.after5xx])
  ]))
  out('\n' + table([['check', 'result', 'figure', 'bound'], ...checks.map((c) => [c.name, c.pass ? 'PASS' : 'FAIL', c.figure, c.bound])]))
  if (mismatches.length) out(`\nbalance mismatches: ${JSON.stringify(mismatches.slice(0, 5), null, 1)}`)
  const traffic = records.reduce((acc, r) => { const k = `${r.kind} ${r.outcome === 'response' ? r.status : r.outcome}`; acc[k] = (acc[k] ?? 0) + 1; return acc }, {})
  const report = {
    profile: PROFILE,
    durationS: DURATION_S,
    startedAt: new Date(t0).toISOString(),
    settings: { instances: INSTANCES, concurrency: CONCURRENCY, rate: RATE, rateLimit: RL, limitKeys: LIMIT_KEYS, users: USERS, redisDownMs: REDIS_DOWN_MS, stubDownMs: STUB_DOWN_MS, graceMs: GRACE_MS, breakerResetMs: BREAKER_RESET_MS, max5xxRatio: MAX_5XX_RATIO },
    requests: records.length,
    traffic,
    perInstance: byInstance,
    faults: faultRows,
    outages: outages.map((o) => ({ from: rel(o.from), to: rel(o.to), injected: o.injected })),
    audit: perType,
    checks,
    mismatches: mismatches.slice(0, 20),
    unexcused5xx: unexcused.slice(0, 50).map((r) => ({ at: rel(r.sentAt), kind: r.kind, inst: r.inst, status: r.status, code: r.code })),
    // For each lock met after the same user's previous write was answered: that user's writes in the TTL before it.
    staleLocks: stale.slice(0, 20).map((r) => ({
      at: rel(r.sentAt),
      kind: r.kind,
      inst: r.inst,
      id: r.id,
      before: (byUser.get(r.user) ?? []).filter((x) => WRITES.has(x.kind) && x.sentAt < r.sentAt && x.sentAt >= r.sentAt - LOCK_TTL_MS - 1000)
        .map((x) => ({ sent: rel(x.sentAt), done: rel(x.doneAt), kind: x.kind, inst: x.inst, status: x.status ?? x.outcome, code: x.code, id: x.id }))
    }))
  }
  mkdirSync(join(ROOT, 'results'), { recursive: true })
  writeFileSync(join(ROOT, 'results', 'chaos.json'), JSON.stringify(report, null, 2))
  const failed = checks.filter((c) => !c.pass)
  out(`\n${failed.length ? `FAILED: ${failed.map((c) => c.name).join('; ')}` : 'all checks passed'} — results/chaos.json`)
  if (REPORT) {
    writeResultsPage(REPORT, { title: 'Chaos run results', command: `npm run chaos -- ${process.argv.slice(2).join(' ')}`.replace(/ -- $/, ''), started: new Date(t0), explainedIn: 'docs/CHAOS.md', printed })
  }
  return report
}

function fleetSummary (records) {
  return Array.from({ length: INSTANCES }, (_, i) => {
    const mine = records.filter((r) => r.inst === i)
    return `#${i} ${mine.length} sent, ${mine.filter((r) => r.outcome === 'response').length} answered, ${mine.filter((r) => r.outcome === 'refused').length} refused, ${mine.filter((r) => r.outcome === 'reset' || r.outcome === 'timeout').length} cut`
  }).join('; ')
}

// ---------------------------------------------------------------------------------------------------------------
// Main (last, so every declaration above is initialised)
try {
  redis = await startRedis({ persistent: true })
  track(() => redis.process)
  const stubEnv = { JWT_SECRET, REDIS_URL: redis.url, STUB_FAULTS: '1', LOG_LEVEL: 'warn' }
  const [auth, user, order] = await Promise.all(['auth', 'user', 'order'].map((name) => startStub(name, stubEnv)))
  stubs = { auth, user, order }
  for (const stub of [auth, user, order]) track(() => stub.process)
  const gatewayEnv = (i) => ({
    JWT_SECRET,
    REDIS_URL: redis.url,
    AUTH_URL: auth.url,
    USER_URL: user.url,
    ORDER_URL: order.url,
    AUDIT_LOG_PATH: join(dir, `audit-${i}.jsonl`),
    // Every denial on its own line: the check below matches each client-seen 429 to its line by request id.
    AUDIT_DENIAL_FLUSH_MS: '0',
    AGENT_AUTH: 'open', // its agent traffic carries no keys (issue 13)
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: String(RL.max),
    RATE_LIMIT_WINDOW_MS: String(RL.windowMs),
    RATE_LIMIT_LOGIN_MAX: '5',
    // The lab acts as many clients from one address: the address layers (docs/SECURITY.md) are out of its way.
    RATE_LIMIT_IP_MAX: '1000000000',
    RATE_LIMIT_LOGIN_IP_MAX: '1000000000',
    RATE_LIMIT_LOGIN_ACCOUNT_MAX: '1000000000',
    RATE_LIMIT_LOGIN_WINDOW_MS: '10000',
    RATE_LIMIT_ON_REDIS_ERROR: 'open',
    BREAKER_RESET_TIMEOUT_MS: String(BREAKER_RESET_MS),
    AUTH_TIMEOUT_MS: '3000',
    USER_TIMEOUT_MS: '3000',
    ORDER_TIMEOUT_MS: '3000',
    AGENT_QUOTA_CAPACITY: '20',
    AGENT_QUOTA_REFILL_PER_SECOND: '5',
    SHUTDOWN_TIMEOUT_MS: '8000',
    LOCK_TTL_MS: String(LOCK_TTL_MS)
  })
  gateways = await Promise.all(Array.from({ length: INSTANCES }, (_, i) => startGateway(gatewayEnv(i))))
  for (const gw of gateways) track(() => gw.process)
  fleet = createFleet(gateways.map((g) => g.url), { connections: 16, timeoutMs: CLIENT_TIMEOUT_MS })
  console.log(`chaos (${PROFILE}): redis ${redis.url}, stubs ${auth.port}/${user.port}/${order.port}, gateways ${gateways.map((g) => g.port).join('/')}, ` +
    `${DURATION_S} s of load, ${CONCURRENCY} mixed workers at ${RATE} req/s + ${LIMIT_KEYS} limit keys × ${LIMIT_INFLIGHT} in flight`)
  const report = await run()
  const failed = report.checks.filter((c) => !c.pass)
  process.exitCode = failed.length ? 1 : 0
} catch (err) {
  console.error(`chaos: the run broke: ${err.stack ?? err}`)
  for (const gw of gateways ?? []) if (gw.stderr()) console.error(`gateway ${gw.port} stderr: ${gw.stderr().slice(-1500)}`)
  process.exitCode = 2
} finally {
  await fleet?.close()
  killAll()
  if (process.env.CHAOS_KEEP === '1') console.log(`audit logs kept in ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
  if (redis) rmSync(redis.dir, { recursive: true, force: true })
  // A fault step still sleeping after a broken run must not keep the process (or restart anything) afterwards.
  process.exit(process.exitCode)
}
