// TC-LOCK-001 per-user lock contention. The user stub is put in slow mode (every call takes slowMs), so each
// deposit holds its user's lock that long and concurrent writes certainly overlap.
// - contention: per round, `concurrency` deposits for one user sent at once → exactly one 200, the others 503
//   GW_USER_LOCKED with Retry-After, and the balance shows the one deposit only;
// - distinct users: at the same time, `distinctUsers` deposits at once, one per user, `depositsPerUser` times →
//   every deposit 200, every balance whole.
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'
import { USER_ADMIN_URL } from './lib/config.js'
import { profileFor } from './lib/profiles.js'
import { callAll, errorCode, get, json } from './lib/http.js'
import { loginUsers, newRunId } from './lib/auth.js'
import { probeHealth, setFault } from './lib/stack.js'
import { lockConflicts } from './lib/metrics.js'
import { exactThresholds, expectExact } from './lib/checks.js'
import { SUMMARY_TREND_STATS, summaryFor } from './lib/summary.js'

const TC = 'tc-lock-001'
const { rounds, contentionVus, concurrency, distinctUsers, depositsPerUser, slowMs, maxDuration } = profileFor(TC)
const AMOUNT = 7

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 503))

export const options = {
  batchPerHost: Math.max(concurrency, distinctUsers),
  scenarios: {
    contention: { executor: 'shared-iterations', exec: 'contention', vus: contentionVus, iterations: rounds, maxDuration },
    distinct_users: { executor: 'per-vu-iterations', exec: 'manyUsers', vus: 1, iterations: depositsPerUser, maxDuration }
  },
  thresholds: {
    checks: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '1s' }],
    // Per round: one winner and its balance; then one balance check per distinct user.
    ...exactThresholds(2 * rounds + distinctUsers),
    tc_lock_conflicts: [`count==${rounds * (concurrency - 1)}`]
  },
  summaryTrendStats: SUMMARY_TREND_STATS
}

export function setup () {
  probeHealth()
  const runId = newRunId()
  const contended = loginUsers(runId, 'lockc', rounds)
  const distinct = loginUsers(runId, 'lockd', distinctUsers)
  setFault(USER_ADMIN_URL, 'slow', slowMs)
  return { contended, distinct }
}

export function contention ({ contended }) {
  const user = contended[exec.scenario.iterationInTest] // one round per iteration, one user per round
  const deposit = ['POST', '/users/:id/deposit', { id: user.userId }, { token: user.token, body: { amount: AMOUNT } }]
  const responses = callAll(Array.from({ length: concurrency }, () => deposit))
  const winners = responses.filter((r) => r.status === 200).length
  const locked = responses.filter((r) => r.status === 503 && errorCode(r) === 'GW_USER_LOCKED' && Number(r.headers['Retry-After']) > 0).length
  lockConflicts.add(responses.filter((r) => r.status === 503 && errorCode(r) === 'GW_USER_LOCKED').length)
  expectExact(`exactly one of ${concurrency} concurrent deposits for one user gets 200`, winners, 1)
  check(locked, { 'the others get 503 GW_USER_LOCKED with Retry-After': (n) => n === concurrency - 1 })
  const balance = json(get('/users/:id', { id: user.userId }, { token: user.token }))?.balance
  expectExact('the balance holds the winning deposit only', balance, AMOUNT)
}

export function manyUsers ({ distinct }) {
  const responses = callAll(distinct.map((u) => ['POST', '/users/:id/deposit', { id: u.userId }, { token: u.token, body: { amount: AMOUNT } }]))
  for (const res of responses) check(res, { 'a deposit for a user nobody else is writing for gets 200': (r) => r.status === 200 })
}

export function teardown ({ distinct }) {
  setFault(USER_ADMIN_URL, 'ok')
  const balances = callAll(distinct.map((u) => ['GET', '/users/:id', { id: u.userId }, { token: u.token }]))
  balances.forEach((res) => expectExact("a distinct user's balance holds all of its deposits", json(res)?.balance, AMOUNT * depositsPerUser))
}

export const handleSummary = summaryFor(TC)
