// Custom k6 metrics shared by every TC (module scope, snake_case, tc_ prefix). In Prometheus (remote write) they
// appear as k6_tc_rate_limited_rate, k6_tc_unexpected_errors_rate, k6_tc_fast_fail_duration_p95 (and _p99, …),
// k6_tc_lock_conflicts_total, k6_tc_quota_tokens_spent_total, k6_tc_quota_refused_total.
import { Counter, Rate, Trend } from 'k6/metrics'

/** Share of responses that were 429. */
export const rateLimited = new Rate('tc_rate_limited')
/** Share of responses that were errors other than 429 and 503 (what must stay ~0). */
export const unexpectedErrors = new Rate('tc_unexpected_errors')
/** Duration of 503 fast-fails while a breaker is open, in ms. */
export const fastFailDuration = new Trend('tc_fast_fail_duration', true)
/** 503 answers with code GW_USER_LOCKED. */
export const lockConflicts = new Counter('tc_lock_conflicts')
/** Agent-quota tokens granted. */
export const quotaTokensSpent = new Counter('tc_quota_tokens_spent')
/** Agent-quota requests refused with 429. */
export const quotaRefused = new Counter('tc_quota_refused')
