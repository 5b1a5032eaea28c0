// What bench/run.mjs and bench/profile.mjs share: the clients' tokens and the warm-up sweep.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The secret the bench gives its gateways (and signs the clients' tokens with). */
export const JWT_SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz'

/** `count` lines "load_test_<i> <token>", signed with the gateway's own signer (dist/src/lib/jwt.js). */
export async function writeTokensFile (file, count) {
  const { createTokenSigner } = await import(new URL('../dist/src/lib/jwt.js', import.meta.url).href)
  const sign = createTokenSigner(JWT_SECRET, 4 * 3600)
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
