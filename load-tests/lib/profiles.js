// Sizes per TC and profile. ci: short runs that keep every assertion (each well under a minute on 2 cores);
// full: the sizes of the design. The TC files read their sizes from here and never copy them.
import { PROFILE, envNumber } from './config.js'

const PROFILES = {
  'tc-rl-001': {
    ci: { clients: 2, extraRequests: 20 },
    full: { clients: 20, extraRequests: 50 }
  },
  'tc-rl-002': {
    ci: { clients: 1, extraRequests: 10 },
    full: { clients: 10, extraRequests: 20 }
  },
  'tc-cb-001': {
    ci: { vus: 5, iterations: 100 },
    full: { vus: 20, iterations: 2000 }
  },
  'tc-cb-002': {
    ci: { vus: 5, duration: '5s' },
    full: { vus: 20, duration: '30s' }
  },
  'tc-mon-001': {
    ci: { vus: 5, iterations: 50 },
    full: { vus: 20, iterations: 1000 }
  },
  'tc-audit-001': {
    ci: { vus: 5, iterations: 30 },
    full: { vus: 20, iterations: 500 }
  },
  'tc-res-001': {
    // Arrival rate per second: low, then a ramp far past what the agents' buckets refill, then held there.
    ci: { agents: 20, users: 10, lowRate: 20, highRate: 400, low: 5, ramp: 10, high: 5, maxVUs: 150 },
    full: { agents: 100, users: 50, lowRate: 100, highRate: 3000, low: 30, ramp: 60, high: 30, maxVUs: 1000 }
  },
  'tc-lock-001': {
    // A round's writes must all meet the lock while its winner holds it (slowMs), so at most `contentionVus` rounds
    // are in flight: with all 50 at once (700 writes with the distinct users') the gateway took ~500 ms to reach
    // them on 2 shared cores and a late write won the lock its round's winner had just released. full: 200 distinct
    // writes at once queue on the 64 upstream connections, so a shorter delay keeps each lock's hold (queue + delay)
    // well inside LOCK_TTL_MS.
    ci: { rounds: 5, contentionVus: 5, concurrency: 8, distinctUsers: 20, depositsPerUser: 2, slowMs: 1000, maxDuration: '40s' },
    full: { rounds: 50, contentionVus: 10, concurrency: 10, distinctUsers: 200, depositsPerUser: 5, slowMs: 500, maxDuration: '120s' }
  },
  'tc-latency-001': {
    // Default bounds (LATENCY_*_MS override them). ci runs on a shared 2-core CI box where k6, the stack and other
    // jobs compete: p99 of 200 samples is its worst 2, and reached 335 ms there with the gateway answering in ~10 ms
    // (p50). full is meant for a quiet machine: 100 / 300 ms.
    ci: { ratePerService: 20, duration: '10s', maxVUs: 20, p90Ms: 200, p99Ms: 750 },
    full: { ratePerService: 100, duration: '60s', maxVUs: 100, p90Ms: 100, p99Ms: 300 }
  },
  'tc-load-basic': {
    ci: { vus: 10, duration: '10s', agents: 10000 },
    full: { vus: 50, duration: '30s', agents: 10000 }
  },
  'tc-stress': {
    ci: { lightAgents: 1000, heavyAgents: 5, lightPeak: 100, heavyPeak: 30, ramp: 10, hold: 5, maxVUs: 100 },
    full: { lightAgents: 10000, heavyAgents: 50, lightPeak: 1500, heavyPeak: 500, ramp: 60, hold: 60, maxVUs: 1000 }
  },
  'tc-spike': {
    // Seconds per stage: baseline hold, ramp up, spike hold, ramp down, recovery hold.
    ci: { baseVus: 20, peakVus: 200, baseline: 5, up: 3, peak: 5, down: 3, recovery: 6 },
    full: { baseVus: 50, peakVus: 500, baseline: 30, up: 10, peak: 30, down: 10, recovery: 60 }
  },
  // --- agents (issue 13): keyed agents from one address, and the IRL seed's own three scripts (load-tests/seed/)
  'tc-agents-keys': {
    // Each agent sends requestsPerAgent requests of 1 token to a bucket of AGENT_QUOTA_CAPACITY (the runner sets 1).
    ci: { agents: 2000, requestsPerAgent: 2, vus: 20, maxDuration: '120s' }, // CI-sized; the full profile has the 10 000
    full: { agents: 10000, requestsPerAgent: 6, vus: 50, maxDuration: '300s' }
  },
  // --- agent usage (issue 13): keyed agents calling the model through /api/v1/chat/completions
  'tc-agents-usage': {
    ci: { agents: 20, vus: 10, duration: '15s' },
    full: { agents: 200, vus: 50, duration: '60s' }
  },
  'seed-basic': { ci: { vus: 50, duration: '10s' }, full: { vus: 50, duration: '30s' } },
  'seed-stress': {
    // Light and heavy populations ramp up, hold and ramp down together (full: 1 + 4 + 1 = 6 min; ci: 20 s, thousands
    // of requests at the held peak are plenty for its p(95) and checks).
    ci: { lightVus: 100, heavyVus: 10, up: '5s', hold: '10s', down: '5s' },
    full: { lightVus: 1000, heavyVus: 100, up: '1m', hold: '4m', down: '1m' }
  },
  // Base, spike and recovery each hold one stage (full: 1 min; ci: 10 s, still thousands of requests in each).
  'seed-spike': { ci: { baseVus: 50, peakVus: 500, stage: '10s' }, full: { baseVus: 50, peakVus: 500, stage: '1m' } },
  'tc-soak': {
    // maxVUs: 2 s of arrivals in flight, so a stall of the shared box (846 ms seen with 30 VUs: 33 dropped) keeps
    // the rate; a gateway that cannot keep up still drops iterations.
    ci: { rate: 50, duration: '20s', maxVUs: 100 },
    full: { rate: 200, duration: '30m', maxVUs: 400 }
  }
}

/** The sizes of `tc` in the current PROFILE. */
export function profileFor (tc) {
  const sizes = PROFILES[tc]
  if (!sizes) throw new Error(`no profile for ${tc}`)
  return sizes[PROFILE]
}

/** "30s", "2m", "1h" → seconds. */
export function seconds (duration) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(duration))
  if (!match) throw new Error(`not a duration: "${duration}" (use e.g. 30s, 10m, 1h)`)
  return Number(match[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2]]
}

export { envNumber }
