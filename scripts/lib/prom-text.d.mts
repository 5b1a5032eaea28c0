/** The sum of the samples of `name` whose labels include every pair of `labels`; `absent` (default NaN) when none match. */
export function promSample (text: string, name: string, labels?: Record<string, string>, opts?: { absent?: number }): number
