import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Gateway } from '../src/app.js'
import { BreakerOpenError, ThresholdBreaker, type BreakerState } from '../src/lib/threshold-breaker.js'
import { outcomeOf, toGatewayError } from '../src/lib/upstream-errors.js'
import { CircuitOpenError } from '../src/errors.js'
import { build, login, sample, servedCount, setFault, stubsFor, waitFor, type Stubs } from './helper.js'

// After the reset timeout the breaker goes half-open; 3 successes close it, one failure reopens it.

const circuitOpen = { statusCode: 503, error: 'Service Unavailable', message: 'Upstream user is failing and its circuit is open; retry after the Retry-After delay', code: 'GW_CIRCUIT_OPEN' }
const badGateway = { statusCode: 502, error: 'Bad Gateway', message: 'Upstream user is unreachable or failed; retry later', code: 'GW_BAD_GATEWAY' }

function deferred () {
  let resolve!: (value: string) => void
  let reject!: (err: Error) => void
  const promise = new Promise<string>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  return { promise, resolve, reject }
}

t.test('ThresholdBreaker alone (plain async functions)', async (t) => {
  const resetTimeoutMs = 150
  function breakerFor (t: Test, isFailure?: (err: unknown) => boolean) {
    const breaker = new ThresholdBreaker({ name: 'unit', failureThreshold: 3, successThreshold: 3, resetTimeoutMs, isFailure })
    const transitions: BreakerState[] = []
    breaker.onTransition((state) => transitions.push(state))
    t.teardown(() => breaker.shutdown())
    let calls = 0
    const ok = async () => { calls++; return 'ok' }
    const boom = async () => { calls++; throw new Error('boom') }
    return { breaker, transitions, ok, boom, calls: () => calls }
  }
  const toHalfOpen = (breaker: ThresholdBreaker) => waitFor(() => breaker.state === 'half_open', { timeoutMs: 3000, what: 'half-open' })

  t.test('opens after 3 consecutive failures and then rejects without calling', async (t) => {
    const { breaker, transitions, ok, boom, calls } = breakerFor(t)
    for (let i = 0; i < 2; i++) await t.rejects(breaker.fire(boom), { message: 'boom' })
    t.equal(await breaker.fire(ok), 'ok', 'a success resets the count')
    for (let i = 0; i < 2; i++) await t.rejects(breaker.fire(boom), { message: 'boom' })
    t.equal(breaker.state, 'closed', '2 in a row after a success: closed')
    await t.rejects(breaker.fire(boom), { message: 'boom' })
    t.equal(breaker.state, 'open')
    t.same(transitions, ['open'])
    t.ok(breaker.retryInMs > 0 && breaker.retryInMs <= resetTimeoutMs, `retryInMs ${breaker.retryInMs} is the time left`)
    const before = calls()
    await t.rejects(breaker.fire(ok), { code: 'EOPENBREAKER' })
    t.equal(calls(), before, 'the action was not called while open')
  })

  t.test('half-open: one probe, then only the successes still needed; 3 successes close it', async (t) => {
    const { breaker, transitions, boom, calls } = breakerFor(t)
    for (let i = 0; i < 3; i++) await t.rejects(breaker.fire(boom))
    await toHalfOpen(breaker)
    t.equal(breaker.retryInMs, 0)

    const probe = deferred()
    const probeCall = breaker.fire(() => probe.promise)
    await t.rejects(breaker.fire(async () => 'never'), { code: 'EOPENBREAKER' }, 'a second call while the probe runs is rejected')
    probe.resolve('probe ok')
    t.equal(await probeCall, 'probe ok')
    t.equal(breaker.state, 'half_open', 'one success does not close it (plain opossum would have)')

    const before = calls()
    const trials = Array.from({ length: 5 }, () => deferred())
    const fired = trials.map((trial) => breaker.fire(() => { calls(); return trial.promise }).then((v) => v, (err: { code?: string }) => err.code))
    trials.forEach((trial, i) => trial.resolve(`trial ${i}`))
    const results = await Promise.all(fired)
    t.same(results, ['trial 0', 'trial 1', 'EOPENBREAKER', 'EOPENBREAKER', 'EOPENBREAKER'], 'two trials run (the successes still needed), the rest are rejected')
    t.equal(calls(), before)
    t.equal(breaker.state, 'closed', 'probe + 2 trials = 3 successes close it')
    t.same(transitions, ['open', 'half_open', 'closed'])
  })

  t.test('a failure in half-open reopens it, on the probe and on a later trial', async (t) => {
    const { breaker, transitions, ok, boom } = breakerFor(t)
    for (let i = 0; i < 3; i++) await t.rejects(breaker.fire(boom))
    await toHalfOpen(breaker)
    await t.rejects(breaker.fire(boom), { message: 'boom' })
    t.equal(breaker.state, 'open', 'failed probe reopens')
    t.ok(breaker.retryInMs > 0, 'and restarts the wait')
    await toHalfOpen(breaker)
    t.equal(await breaker.fire(ok), 'ok')
    t.equal(await breaker.fire(ok), 'ok')
    t.equal(breaker.state, 'half_open')
    await t.rejects(breaker.fire(boom), { message: 'boom' })
    t.equal(breaker.state, 'open', 'a failed trial after two successes reopens')
    await t.rejects(breaker.fire(ok), { code: 'EOPENBREAKER' })
    await toHalfOpen(breaker)
    for (let i = 0; i < 3; i++) t.equal(await breaker.fire(ok), 'ok')
    t.equal(breaker.state, 'closed', 'successes are counted afresh after a reopen')
    t.same(transitions, ['open', 'half_open', 'open', 'half_open', 'open', 'half_open', 'closed'])
  })

  t.test('the owned state machine: a BreakerOpenError, stale trials ignored, a filtered error counts neither way', async (t) => {
    const clientError = Object.assign(new Error('client'), { statusCode: 409 })
    const { breaker, transitions, ok, boom } = breakerFor(t, (err) => err !== clientError)
    for (let i = 0; i < 3; i++) await t.rejects(breaker.fire(boom))
    const rejected = await breaker.fire(ok).catch((err: unknown) => err)
    t.ok(rejected instanceof BreakerOpenError, 'an open breaker rejects with BreakerOpenError')
    const mapped = toGatewayError('unit', rejected)
    t.ok(mapped instanceof CircuitOpenError, 'toGatewayError maps it by type to GW_CIRCUIT_OPEN')
    t.equal(mapped.code, 'GW_CIRCUIT_OPEN')
    t.equal(outcomeOf(rejected), 'circuit_open')

    await toHalfOpen(breaker)
    const slowProbe = deferred()
    const probeCall = breaker.fire(() => slowProbe.promise)
    await t.rejects(breaker.fire(async () => 'never'), { code: 'EOPENBREAKER' }, 'one probe at a time')
    slowProbe.reject(new Error('boom'))
    await t.rejects(probeCall, { message: 'boom' })
    t.equal(breaker.state, 'open', 'the failed probe reopened it')
    await toHalfOpen(breaker)
    await t.rejects(breaker.fire(async () => { throw clientError }), clientError, 'a filtered error is passed on')
    t.equal(breaker.state, 'half_open', 'and counts neither as a failure nor as a success (a request never sent)')
    t.equal(await breaker.fire(ok), 'ok')
    t.equal(await breaker.fire(ok), 'ok')
    t.equal(breaker.state, 'half_open', 'filtered error + 2 successes: still one success short')
    t.equal(await breaker.fire(ok), 'ok')
    t.equal(breaker.state, 'closed', '3 successes close it')
    t.same(transitions, ['open', 'half_open', 'open', 'half_open', 'closed'])
  })

  t.test('a trial answered after its half-open period ended does not count in the next one', async (t) => {
    const { breaker, ok, boom } = breakerFor(t)
    for (let i = 0; i < 3; i++) await t.rejects(breaker.fire(boom))
    await toHalfOpen(breaker)
    t.equal(await breaker.fire(ok), 'ok', 'the probe succeeds')
    const late = deferred()
    const lateCall = breaker.fire(() => late.promise)
    await t.rejects(breaker.fire(boom), { message: 'boom' })
    t.equal(breaker.state, 'open', 'a failed trial reopens it while another trial is still out')
    await toHalfOpen(breaker)
    late.resolve('late')
    t.equal(await lateCall, 'late', 'the late trial\'s answer is passed on')
    const probe = deferred()
    const probeCall = breaker.fire(() => probe.promise)
    await t.rejects(breaker.fire(async () => 'never'), { code: 'EOPENBREAKER' }, 'the late success did not count: this period still wants its single probe first')
    probe.resolve('probe')
    t.equal(await probeCall, 'probe')
    t.equal(breaker.state, 'half_open')
  })

  t.test('errors that isFailure rejects are passed on but never count', async (t) => {
    const clientError = Object.assign(new Error('client'), { statusCode: 409 })
    const { breaker, transitions } = breakerFor(t, (err) => (err as Error).message !== 'client')
    for (let i = 0; i < 10; i++) await t.rejects(breaker.fire(async () => { throw clientError }), clientError)
    t.equal(breaker.state, 'closed')
    t.same(transitions, [])
  })
})

async function breakerOf (app: Gateway): Promise<BreakerState> {
  return (await app.inject({ method: 'GET', url: '/health/ready' })).json().upstreams.user.breaker
}

/** An in-process gateway with a 1 s reset timeout in front of the shared stubs (healed first), plus a logged-in user. */
async function setup (t: Test, stubs: Stubs, name: string, env: Record<string, string> = {}) {
  await setFault(stubs.user, 'ok')
  const app = await build(t, { ...stubs.gatewayEnv, BREAKER_FAILURE_THRESHOLD: '5', BREAKER_SUCCESS_THRESHOLD: '3', BREAKER_RESET_TIMEOUT_MS: '1000', ...env })
  const user = `load_test_${name}`
  const auth = await login(app, user)
  const getUser = () => app.inject({ method: 'GET', url: `/users/${user}`, headers: auth })
  async function openIt (expected = badGateway) {
    for (let i = 0; i < 5; i++) t.same((await getUser()).json(), expected, `failure ${i + 1}`)
    t.equal(await breakerOf(app), 'open')
  }
  const halfOpen = () => waitFor(async () => await breakerOf(app) === 'half_open', { timeoutMs: 5000, what: 'user breaker half-open' })
  return { app, user, auth, getUser, openIt, halfOpen }
}

t.test('through the gateway, against real stub processes', async (t) => {
  // One set of stubs for these subtests (they run one after another); each subtest builds its own gateway.
  const stubs = await stubsFor(t)

  t.test('after the reset timeout, 3 successes close the breaker (ready, metrics, audit)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-breaker-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const auditPath = join(dir, 'audit.jsonl')
    const { app, getUser, openIt, halfOpen } = await setup(t, stubs, 'recovers', { AUDIT_LOG_PATH: auditPath })
    const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body

    await setFault(stubs.user, 'fail')
    await openIt()
    const rejected = await getUser()
    t.same(rejected.json(), circuitOpen)
    t.equal(rejected.headers['retry-after'], '1', 'Retry-After: under a second to the trial')
    t.equal(sample(await metrics(), 'gateway_breaker_state', { upstream: 'user' }), 2)

    await setFault(stubs.user, 'ok')
    await halfOpen()
    t.equal(sample(await metrics(), 'gateway_breaker_state', { upstream: 'user' }), 1, 'gauge: half-open')
    for (let i = 1; i <= 3; i++) {
      t.equal((await getUser()).statusCode, 200, `trial ${i} passes`)
      t.equal(await breakerOf(app), i < 3 ? 'half_open' : 'closed', `after ${i} success(es) the breaker is ${i < 3 ? 'half-open' : 'closed'}`)
    }
    const ready = await app.inject({ method: 'GET', url: '/health/ready' })
    t.same(ready.json(), { status: 'ok', redis: 'not_configured', upstreams: { auth: { breaker: 'closed' }, user: { breaker: 'closed' }, order: { breaker: 'closed' }, model: { breaker: 'closed' } } })

    const text = await metrics()
    t.equal(sample(text, 'gateway_breaker_state', { upstream: 'user' }), 0, 'gauge: closed')
    for (const state of ['open', 'half_open', 'closed']) {
      t.equal(sample(text, 'gateway_breaker_transitions_total', { upstream: 'user', state }), 1, `one transition to ${state}`)
    }
    t.equal(sample(text, 'gateway_breaker_transitions_total', { upstream: 'auth' }), 0, 'auth breaker never moved')

    const audited = await waitFor(() => {
      const lines = readFileSync(auditPath, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
      const breakerEvents = lines.filter((e) => e.type.startsWith('breaker_'))
      return breakerEvents.length === 3 && breakerEvents
    }, { timeoutMs: 3000, what: 'three breaker events in the audit log' })
    t.same(audited.map((e: { type: string, upstream: string, outcome: string }) => [e.type, e.upstream, e.outcome]),
      [['breaker_open', 'user', 'failure'], ['breaker_half_open', 'user', 'failure'], ['breaker_closed', 'user', 'recovered']])
  })

  t.test('a failure in half-open reopens the breaker (probe and later trial)', async (t) => {
    const { app, getUser, openIt, halfOpen } = await setup(t, stubs, 'reopens')
    await setFault(stubs.user, 'fail')
    await openIt()

    await halfOpen()
    const served = await servedCount(stubs.user)
    t.same((await getUser()).json(), badGateway, 'the probe reaches the stub and fails')
    t.equal(await servedCount(stubs.user), served + 1)
    t.equal(await breakerOf(app), 'open', 'failed probe reopens')
    t.same((await getUser()).json(), circuitOpen)

    await halfOpen()
    await setFault(stubs.user, 'ok')
    t.equal((await getUser()).statusCode, 200)
    t.equal((await getUser()).statusCode, 200)
    t.equal(await breakerOf(app), 'half_open', 'two successes: still half-open')
    await setFault(stubs.user, 'fail')
    t.same((await getUser()).json(), badGateway)
    t.equal(await breakerOf(app), 'open', 'a failed third trial reopens')
    t.same((await getUser()).json(), circuitOpen)

    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    t.equal(sample(text, 'gateway_breaker_transitions_total', { upstream: 'user', state: 'open' }), 3)
    t.equal(sample(text, 'gateway_breaker_transitions_total', { upstream: 'user', state: 'half_open' }), 2)
    t.equal(sample(text, 'gateway_breaker_transitions_total', { upstream: 'user', state: 'closed' }), 0)
  })

  t.test('while half-open a bounded number of trials pass and the rest get 503', async (t) => {
    const { app, getUser, openIt, halfOpen } = await setup(t, stubs, 'bounded')
    await setFault(stubs.user, 'fail')
    await openIt()
    await setFault(stubs.user, 'slow', 400) // trials overlap with the calls that arrive meanwhile
    await halfOpen()

    async function burst (n: number) {
      const served = await servedCount(stubs.user)
      const answers = await Promise.all(Array.from({ length: n }, () => getUser()))
      const rejected = answers.filter((res) => res.statusCode === 503)
      for (const res of rejected) {
        t.same(res.json(), circuitOpen)
        t.equal(res.headers['retry-after'], '1')
      }
      return { passed: answers.filter((res) => res.statusCode === 200).length, rejected: rejected.length, reached: await servedCount(stubs.user) - served }
    }
    t.same(await burst(10), { passed: 1, rejected: 9, reached: 1 }, 'first burst: the single probe passes')
    t.equal(await breakerOf(app), 'half_open')
    t.same(await burst(10), { passed: 2, rejected: 8, reached: 2 }, 'second burst: the two successes still needed pass')
    t.equal(await breakerOf(app), 'closed')
    t.same(await burst(10), { passed: 10, rejected: 0, reached: 10 }, 'closed: everything passes')
  })

  t.test('a killed stub opens the breaker (502, then 503); a restarted stub closes it', async (t) => {
    const { app, user, auth, getUser, openIt, halfOpen } = await setup(t, stubs, 'killed')
    t.equal((await getUser()).statusCode, 200)
    await stubs.user.kill()
    await openIt(badGateway)
    const rejected = await getUser()
    t.same(rejected.json(), circuitOpen)
    t.equal(rejected.headers['retry-after'], '1')

    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user, password: 'pw-123' } })).statusCode, 200, 'auth still 200')
    t.equal((await app.inject({ method: 'GET', url: `/users/${user}/orders`, headers: auth })).statusCode, 200, 'order still 200')

    await stubs.user.start()
    await halfOpen()
    for (let i = 1; i <= 3; i++) t.equal((await getUser()).statusCode, 200, `trial ${i} against the restarted stub`)
    t.equal(await breakerOf(app), 'closed', 'closed again')
  })
})
