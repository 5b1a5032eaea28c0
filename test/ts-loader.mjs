// The tap suite's TypeScript loader (package.json "tap": node-arg --import, in place of @tapjs/typescript's ts-node).
// Each test file is its own process: ts-node loaded the compiler and transpiled the ~80 files of src/, plugins/,
// routes/ and test/ again in every one (~1.5 s of CPU per file, twice 63 files per CI run). This one transpiles as
// ts-node's transpile-only mode did (typescript's transpileModule, no type check: `npm run typecheck` does that) and
// keeps the output in node_modules/.cache, keyed by the source's hash, so the compiler is loaded only on a miss.
// Hand-written because the packaged way, @tapjs/tsx 3.4.8, pins @tapjs/core 4.5.8 while tap 21.8 ships 4.6.0.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { register, createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMainThread } from 'node:worker_threads'

// Imported with --import on the main thread: register this same file, whose hooks then run on the loader thread.
if (isMainThread) register(import.meta.url)

const require = createRequire(import.meta.url)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CACHE = join(ROOT, 'node_modules', '.cache', 'ts-loader')
const TS_VERSION = JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')).version
// tsconfig.json's output settings for ES modules; the source map is inline so coverage and stack traces point at .ts.
const COMPILER_OPTIONS = { module: 'ESNext', target: 'ES2022', esModuleInterop: true, inlineSourceMap: true, inlineSources: true }
const CONFIG_KEY = `${TS_VERSION} ${JSON.stringify(COMPILER_OPTIONS)}`

let ts
function transpile (source, filename) {
  ts ??= require('typescript')
  const { outputText } = ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: ts.convertCompilerOptionsFromJson(COMPILER_OPTIONS, ROOT).options
  })
  return outputText
}

/** `./x.js` written in a .ts file names the `./x.ts` beside it (NodeNext resolution, as tsc compiles it). */
export async function resolve (specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context)
  } catch (err) {
    if (err.code !== 'ERR_MODULE_NOT_FOUND' || !specifier.endsWith('.js') || !context.parentURL?.endsWith('.ts')) throw err
    return nextResolve(specifier.slice(0, -3) + '.ts', context)
  }
}

export async function load (url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context)
  const filename = fileURLToPath(url)
  const source = readFileSync(filename, 'utf8')
  const cached = join(CACHE, `${createHash('sha256').update(`${CONFIG_KEY}\0${filename}\0${source}`).digest('hex')}.js`)
  let output
  try {
    output = readFileSync(cached, 'utf8')
  } catch {
    output = transpile(source, filename)
    mkdirSync(CACHE, { recursive: true })
    // Test processes may run at once: write aside and rename, so none reads half an entry.
    const partial = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`
    writeFileSync(partial, output)
    renameSync(partial, cached)
  }
  // Handed down the chain (the default load takes the given source) so tap's coverage hook sees the JS and its map.
  return nextLoad(url, { ...context, format: 'module', source: output })
}
