// Starts Debian's prometheus (2.42) on a free port with the remote-write receiver on, scraping the given targets.
// Used by the load runner and the dashboard proof; docker-compose uses prometheus/prometheus.yml instead.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, LAB_STUB_CREDENTIAL, waitFor } from './stack.mjs'

// Jobs whose targets are stubs: they answer /metrics to the gateway's credential only (docs/SECURITY.md).
const STUB_JOBS = new Set(['stubs', 'auth', 'user', 'order'])

/**
 * @param {{ jobs: Record<string, string[]>, scrapeIntervalS?: number, port?: number }} opts  job name → host:port targets
 * @returns {Promise<{ url: string, port: number, remoteWriteUrl: string, stop: () => Promise<void> }>}
 */
export async function startPrometheus ({ jobs, scrapeIntervalS = 2, port }) {
  port ??= await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'gw-prom-'))
  const scrapeConfigs = Object.entries(jobs).map(([job, targets]) =>
    `  - job_name: ${job}\n${STUB_JOBS.has(job) ? `    authorization:\n      type: Bearer\n      credentials: '${LAB_STUB_CREDENTIAL}'\n` : ''}    static_configs:\n      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`).join('\n')
  writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: ${scrapeIntervalS}s\n  evaluation_interval: ${scrapeIntervalS}s\nscrape_configs:\n${scrapeConfigs}\n`)
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.enable-remote-write-receiver',
    '--log.level=warn'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`)
    return (await fetch(`${url}/-/ready`)).ok
  }, { timeoutMs: 30_000, what: 'prometheus ready' })
  return {
    url,
    port,
    remoteWriteUrl: `${url}/api/v1/write`,
    async stop () {
      if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit') }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
