// Where the stack is and which profile to run, from __ENV with loopback defaults (the ports of `npm start`).
// `npm run load` sets all of these; with a stack of your own, `k6 run -e BASE_URL=… load-tests/tc-….js`.

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/$/, '')
/** The stubs' own ports, for their fault admin (`/__fault`, needs STUB_FAULTS=1 on the stubs). */
export const AUTH_ADMIN_URL = (__ENV.AUTH_ADMIN_URL || 'http://127.0.0.1:3001').replace(/\/$/, '')
export const USER_ADMIN_URL = (__ENV.USER_ADMIN_URL || 'http://127.0.0.1:3002').replace(/\/$/, '')
export const ORDER_ADMIN_URL = (__ENV.ORDER_ADMIN_URL || 'http://127.0.0.1:3003').replace(/\/$/, '')

/** ci: short, same assertions (well under a minute each on 2 cores); full: the sizes of the design. */
export const PROFILE = __ENV.PROFILE || 'ci'
if (PROFILE !== 'ci' && PROFILE !== 'full') throw new Error(`PROFILE must be ci or full, got "${PROFILE}"`)

/** Where handleSummary writes <tc>.json (the folder must exist; `npm run load` creates it). */
export const RESULTS_DIR = (__ENV.RESULTS_DIR || 'results').replace(/\/$/, '')

/** The gateway settings a TC's expectations depend on; `npm run load` starts the gateway with the same values. */
export const GATEWAY = {
  rateLimitMax: Number(__ENV.RATE_LIMIT_MAX || 1000),
  rateLimitWindowMs: Number(__ENV.RATE_LIMIT_WINDOW_MS || 60000),
  rateLimitDemoMax: Number(__ENV.RATE_LIMIT_DEMO_MAX || 5),
  breakerFailureThreshold: Number(__ENV.BREAKER_FAILURE_THRESHOLD || 5),
  breakerSuccessThreshold: Number(__ENV.BREAKER_SUCCESS_THRESHOLD || 3),
  breakerResetTimeoutMs: Number(__ENV.BREAKER_RESET_TIMEOUT_MS || 60000),
  userTimeoutMs: Number(__ENV.USER_TIMEOUT_MS || 5000),
  agentQuotaCapacity: Number(__ENV.AGENT_QUOTA_CAPACITY || 100)
}

/** A number from __ENV, or the fallback. */
export function envNumber (name, fallback) {
  const raw = __ENV[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got "${raw}"`)
  return value
}
