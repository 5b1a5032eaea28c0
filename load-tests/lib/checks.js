// Checks shared by the TCs. Check names are sentences, so a failed one reads as what went wrong.
import { check } from 'k6'
import { exactComparisons, exactCounts } from './report-metrics.js'

/** An exact comparison (a count, a delta): a named check, tc_exact_counts and tc_exact_comparisons, a log line on a miss. */
export function expectExact (name, actual, expected) {
  const ok = check(actual, { [name]: (v) => v === expected })
  exactCounts.add(ok)
  exactComparisons.add(1)
  if (!ok) console.error(`${name}: got ${actual}, expected ${expected}`)
  return ok
}

/** Thresholds that make a TC's exact comparisons count: all equal, and all `n` of them made. */
export const exactThresholds = (n) => ({ tc_exact_counts: ['rate==1'], tc_exact_comparisons: [`count>=${n}`] })
