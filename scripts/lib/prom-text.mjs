// The one reader of Prometheus text expositions, for the tests (test/helper.ts), the soak and the bench.
// Hand-written (a dozen lines) because the parsers on npm are for the protobuf or OpenMetrics formats or bring a client.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** The labels of one sample line's `{…}` part, values unescaped. */
function labelsOf (text) {
  const labels = {}
  for (const [, key, value] of text.matchAll(LABEL)) labels[key] = value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))
  return labels
}

/**
 * The sum of the samples of `name` whose labels include every pair of `labels` (exact values); `absent` (NaN
 * unless given) when no sample matches.
 */
export function promSample (text, name, labels = {}, { absent = NaN } = {}) {
  const want = Object.entries(labels)
  let total = absent
  let found = false
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const match = SAMPLE.exec(line)
    if (!match || match[1] !== name) continue
    const have = match[2] ? labelsOf(match[2]) : {}
    if (!want.every(([key, value]) => have[key] === String(value))) continue
    total = (found ? total : 0) + Number(match[3])
    found = true
  }
  return total
}
