// What bench/run.mjs and bench/investigate/*.mjs share: the clients' tokens, the backends, the warm-up, the perf recorder.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startRedis, startStubs } from '../scripts/lib/stack.mjs'

/** The secret the bench gives its gateways (and signs the clients' tokens with). */
export const JWT_SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz'
/** The clients' tokens live 4 h; the gateway refuses tokens living longer than its JWT_TTL_SECONDS. */
export const JWT_TTL_SECONDS = String(4 * 3600)

/** `count` lines "load_test_<i> <token>", signed with the gateway's own signer (dist/src/lib/jwt.js). */
export async function writeTokensFile (file, count) {
  const { createTokenSigner } = await import(new URL('../dist/src/lib/jwt.js', import.meta.url).href)
  const sign = createTokenSigner(JWT_SECRET, Number(JWT_TTL_SECONDS))
  const lines = []
  for (let i = 0; i < count; i++) lines.push(`load_test_${i} ${sign(`load_test_${i}`)}`)
  writeFileSync(file, lines.join('\n') + '\n')
}

/** Every client once, 50 at a time: each token's first (uncached) verification happens here, not in a measurement. */
export async function sweepClients (url, tokensFile, concurrency = 50) {
  const clients = readFileSync(tokensFile, 'utf8').split('\n').filter(Boolean).map((line) => line.split(' '))
  let next = 0
  let failed = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < clients.length) {
      const [id, token] = clients[next++]
      const res = await fetch(`${url}/users/${id}`, { headers: { authorization: `Bearer ${token}` } })
      await res.arrayBuffer()
      if (res.status !== 200) failed++
    }
  }))
  if (failed) throw new Error(`warm-up: ${failed} of ${clients.length} requests to ${url} did not answer 200`)
}

/** The clients' tokens, Redis (unless embedded) and the three stubs; each one's stop is pushed onto `stops`. */
export async function startBackends ({ tokensFile, embedded, stops }) {
  await writeTokensFile(tokensFile, 10_000)
  const redis = embedded ? undefined : await startRedis()
  if (redis) stops.push(() => redis.stop())
  const stubs = await startStubs({ JWT_SECRET })
  stops.push(() => stubs.stop())
  return { redis, stubs }
}

/** Records a process with Linux perf (cpu-clock, call graphs) into `file`; resolves once perf is attached, with its stop. */
export async function recordPerf (pid, file) {
  const recorder = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-g', '-o', file, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'inherit'] })
  await new Promise((resolve) => setTimeout(resolve, 300))
  return async () => { recorder.kill('SIGINT'); await new Promise((resolve) => recorder.once('exit', resolve)) }
}

/** The vegeta binary setup.sh builds (VEGETA_BIN to use another; else the one on PATH). */
export const VEGETA = [process.env.VEGETA_BIN, join(fileURLToPath(new URL('..', import.meta.url)), '.cache', 'bin', 'vegeta')].find((p) => p && existsSync(p)) ?? 'vegeta'

/**
 * vegeta's targets: GET /users/:id with each client's token in turn, every client but the tokens file's first (the
 * flood's, over its limit for the rest of the window once a flood ran).
 */
export function vegetaTargets (url, tokensFile) {
  return readFileSync(tokensFile, 'utf8').split('\n').filter(Boolean).slice(1).map((line) => {
    const [id, token] = line.split(' ')
    return `GET ${url}/users/${id}\nAuthorization: Bearer ${token}\n`
  }).join('\n')
}

/** vegeta at `rate`/s for `seconds` over `targets`; resolves with its JSON report. */
export function vegetaAttack (targets, rate, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `"${VEGETA}" attack -rate=${rate}/s -duration=${seconds}s -timeout=5s -keepalive=true -max-workers=2000 -lazy=false | "${VEGETA}" report -type=json`], { stdio: ['pipe', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stdin.end(targets)
    child.once('exit', (code) => code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`vegeta exited ${code}`)))
  })
}
