// Runs real k6 as a child process, bounded in time, with its output in a log file. Used by scripts/load.mjs.
import { spawn, execFileSync } from 'node:child_process'
import { createWriteStream, existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './stack.mjs'

/** K6_BIN, else the one scripts/setup.sh builds into .cache/bin, else k6 on PATH. */
export function k6Binary () {
  if (process.env.K6_BIN) return process.env.K6_BIN
  const cached = join(ROOT, '.cache', 'bin', 'k6')
  return existsSync(cached) ? cached : 'k6'
}

/** "k6 v1.8.1 (go1.x, linux/amd64)", or throws with what to do. */
export function k6Version (bin = k6Binary()) {
  try {
    return execFileSync(bin, ['version'], { encoding: 'utf8' }).split('\n')[0].trim()
  } catch (err) {
    throw new Error(`k6 not found (${bin}): run \`npm run setup\` (builds it with go install) or set K6_BIN=/path/to/k6 (${err.message})`)
  }
}

/**
 * `k6 run` with `-e` variables, tags and outputs; stdout and stderr go to `logFile`. Past `timeoutMs` k6 gets
 * SIGINT (it stops and still writes its summary), 15 s later SIGKILL.
 * @returns {{ promise: Promise<{ code: number|null, signal: string|null, timedOut: boolean, ms: number }>, stop: () => void, args: string[] }}
 */
export function runK6 ({ bin = k6Binary(), script, vars = {}, tags = {}, outputs = [], env = {}, logFile, timeoutMs }) {
  // --address '': no REST API listener (port 6565 would clash with a colleague's k6 and is not needed here).
  const args = ['run', '--no-usage-report', '--quiet', '--address', '',
    ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...Object.entries(tags).flatMap(([k, v]) => ['--tag', `${k}=${v}`]),
    ...outputs.flatMap((o) => ['-o', o]),
    script]
  const started = Date.now()
  const child = spawn(bin, args, { cwd: ROOT, env: { ...process.env, K6_NO_USAGE_REPORT: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const log = createWriteStream(logFile)
  child.stdout.pipe(log, { end: false })
  child.stderr.pipe(log, { end: false })
  let timedOut = false
  let killer
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGINT')
    killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  }, timeoutMs)
  const promise = new Promise((resolve, reject) => {
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(killer)
      const result = { code, signal, timedOut, ms: Date.now() - started }
      log.end(() => resolve(result))
    })
  })
  return {
    promise,
    args,
    stop () { if (child.exitCode === null) child.kill('SIGINT') }
  }
}
