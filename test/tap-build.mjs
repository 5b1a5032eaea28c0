// Run by `npm test` before tap: rebuilds tap's Test class when it still carries @tapjs/typescript, as a fresh
// `npm ci` leaves it. package.json's tap.plugin drops that plugin (test/ts-loader.mjs loads TypeScript instead), and tap
// does rebuild on such a change, but only after the run has computed its test processes' arguments: the first run
// in a fresh clone would still give every test process ts-node, on top of the loader. Later runs skip this (~50 ms).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const modules = new URL('../node_modules/', import.meta.url)
const built = readFileSync(new URL('@tapjs/test/test-built/dist/esm/index.js', modules), 'utf8')
const signature = /export const signature = `([^`]*)`/.exec(built)?.[1] ?? ''
if (signature.split('\n').includes('@tapjs/typescript')) {
  console.error('tap-build: tap is built with @tapjs/typescript; rebuilding it with package.json\'s plugins (once)')
  const build = spawnSync(process.execPath, [new URL('.bin/tap', modules).pathname, 'build'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 })
  if (build.status !== 0) process.exit(build.status ?? 1)
}
