// Builds a patched copy of the gateway, so a proposed change can be measured side by side in one bench run without
// touching the working tree:
//   node bench/variant.mjs <name> [file.patch] [--rev=HEAD]  → prints the built server.js (/tmp/gw-variant-<name>/…)
//   BENCH_TARGETS=variant-base,variant-<name> BENCH_BASELINE=variant-base \
//     node bench/run.mjs --variant=base:redis:<path of "base"> --variant=<name>:redis:<path of name>
// The copy is src/, plugins/, routes/ and tsconfig.json at a commit (HEAD: stable while others edit the working
// tree), node_modules linked, the patch applied with `patch -p1` (a `git diff` output), compiled with the project's tsc.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, symlinkSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const rev = process.argv.find((a) => a.startsWith('--rev='))?.slice(6) ?? 'HEAD'
const [name, patchFile] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
if (!name || !/^[a-z0-9-]+$/.test(name)) {
  console.error('usage: node bench/variant.mjs <name: a-z0-9-> [file.patch]')
  process.exit(2)
}
const dest = join(tmpdir(), `gw-variant-${name}`)
rmSync(dest, { recursive: true, force: true })
mkdirSync(dest, { recursive: true })
const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', rev, 'src', 'plugins', 'routes', 'tsconfig.json', 'package.json'], { maxBuffer: 256 * 2 ** 20 })
execFileSync('tar', ['-x', '-C', dest], { input: tar })
symlinkSync(join(ROOT, 'node_modules'), join(dest, 'node_modules'))
if (patchFile) execFileSync('patch', ['-p1', '--forward', '-d', dest], { input: readFileSync(resolve(patchFile)), stdio: ['pipe', 'inherit', 'inherit'] })
execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dest, 'tsconfig.json')], { stdio: 'inherit' })
console.log(join(dest, 'dist', 'src', 'server.js'))
