import neostandard from 'neostandard'

// k6 scripts run in k6's goja runtime, not Node: these are the globals it provides (https://grafana.com/docs/k6/latest/javascript-api/init-context/)
const k6Globals = {
  __ENV: 'readonly',
  __VU: 'readonly',
  __ITER: 'readonly',
  open: 'readonly',
  console: 'readonly'
}

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'results/**', '.cache/**', '.tap/**', 'coverage/**']
  }),
  {
    files: ['load-tests/**/*.js', 'scripts/k6/**/*.js', 'bench/investigate/fixed-rate.js'],
    languageOptions: { globals: k6Globals }
  }
]
