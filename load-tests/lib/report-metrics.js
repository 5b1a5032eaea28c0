// Metrics the runner's table and the exact-count TCs need on top of the shared ones in metrics.js (kept apart so
// the names there, which the Grafana dashboard queries, never change). Module scope, snake_case, tc_ prefix.
import { Counter, Rate } from 'k6/metrics'

/** Share of responses that were errors other than 429 (network errors included): the table's "non-429 error %". */
export const non429Errors = new Rate('tc_non_429_errors')
/** One sample per exact comparison a TC makes (counts, deltas); the threshold is rate==1. */
export const exactCounts = new Rate('tc_exact_counts')
/** How many exact comparisons were made: a threshold `count>=N` proves teardown got to all of them. */
export const exactComparisons = new Counter('tc_exact_comparisons')
/** Security events the TC caused, by `type`, as proved by the gateway's answers; the runner compares the audit log. */
export const auditExpected = new Counter('tc_audit_expected')
