import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import promClient from 'prom-client'
import type { GatewayConfig } from './config.js'
import { startGateway } from './server.js'
import { METRICS_REQUEST, METRICS_RESPONSE, type MetricsRequest } from './lib/cluster-metrics.js'

/** GATEWAY_WORKERS as a number: `auto` is the cores this process may use. */
export function workerCount (config: GatewayConfig): number {
  return config.GATEWAY_WORKERS === 'auto' ? availableParallelism() : config.GATEWAY_WORKERS
}

// A worker that dies within this long of its start counts as a crash loop: its replacement waits longer each time.
const STABLE_AFTER_MS = 10_000
const BACKOFF_MS = [100, 500, 1000, 2000, 5000]
// How long after SHUTDOWN_TIMEOUT_MS the primary waits for its workers before killing them.
const DRAIN_MARGIN_MS = 2000

/**
 * The gateway as `npm start` and server.js run it: in this process with one worker, else a node:cluster primary that
 * forks the workers (each a whole gateway on the shared port; state shared through Redis), replaces a crashed one
 * with backoff, answers their /metrics with every worker's series summed, and drains them all on SIGTERM.
 */
export async function runGateway (config: GatewayConfig, onClosed: () => void = () => {}): Promise<void> {
  const workers = workerCount(config)
  if (cluster.isWorker) {
    // The IPC channel would keep a closed worker alive; letting go of it lets the process end by itself.
    await startGateway(config, () => { onClosed(); process.disconnect?.() })
    return
  }
  if (workers === 1) {
    await startGateway(config, onClosed)
    return
  }
  if (!config.REDIS_URL && !config.REDIS_CLUSTER_NODES) {
    console.error(`gateway: invalid configuration: GATEWAY_WORKERS=${config.GATEWAY_WORKERS} (${workers} workers) needs REDIS_URL ` +
      '(or REDIS_CLUSTER_NODES): limits, quotas, locks and keys must be shared by the workers; set REDIS_URL or GATEWAY_WORKERS=1')
    process.exit(1)
  }
  await startPrimary(config, workers, onClosed)
}

async function startPrimary (config: GatewayConfig, count: number, onClosed: () => void): Promise<void> {
  const log = pino({ level: config.LOG_LEVEL, base: { pid: process.pid, role: 'primary' } })
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./server.js', import.meta.url)) })
  const aggregator = new promClient.AggregatorRegistry()
  const startedAt = new Map<Worker, number>()
  let quickCrashes = 0
  let closing = false
  let everListened = false

  const fork = () => {
    // Secrets generated at start (loopback) go to every worker, so they all verify the same tokens.
    const worker = cluster.fork({ JWT_SECRET: config.JWT_SECRET, STUB_CREDENTIAL: config.STUB_CREDENTIAL })
    startedAt.set(worker, Date.now())
    worker.on('message', (message: MetricsRequest) => {
      if (message?.type !== METRICS_REQUEST) return
      aggregator.clusterMetrics().then(
        (text) => worker.isConnected() && worker.send({ type: METRICS_RESPONSE, id: message.id, text }),
        (err: Error) => worker.isConnected() && worker.send({ type: METRICS_RESPONSE, id: message.id, error: err.message })
      )
    })
  }

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? 0)
    startedAt.delete(worker)
    if (closing) return
    if (!everListened) {
      log.error({ workerPid: worker.process.pid, code, signal }, 'a worker exited before the gateway listened; stopping')
      shutdown('startup failure', 1)
      return
    }
    quickCrashes = lived < STABLE_AFTER_MS ? quickCrashes + 1 : 0
    const delay = BACKOFF_MS[Math.min(quickCrashes, BACKOFF_MS.length - 1)]
    log.error({ workerPid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delay }, 'worker exited; replacing it')
    setTimeout(() => { if (!closing) fork() }, delay)
  })
  cluster.on('online', (worker) => log.info({ workerPid: worker.process.pid }, 'worker started'))

  const listening = new Promise<number>((resolve) => {
    let up = 0
    cluster.on('listening', (_worker, address) => {
      if (++up === count) resolve(address.port)
    })
  })

  let exitCode = 0
  function shutdown (reason: string, code = 0) {
    if (closing) return
    closing = true
    exitCode = code
    log.info({ reason, workers: startedAt.size }, 'closing: draining every worker')
    const killer = setTimeout(() => {
      log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS + DRAIN_MARGIN_MS }, 'workers did not drain in time; killing them')
      for (const worker of startedAt.keys()) worker.process.kill('SIGKILL')
      exitCode = 1
    }, config.SHUTDOWN_TIMEOUT_MS + DRAIN_MARGIN_MS)
    // Each worker closes as a single gateway does on SIGTERM: finishes its in-flight requests, flushes, exits 0.
    for (const worker of startedAt.keys()) worker.process.kill('SIGTERM')
    const failed: number[] = []
    const exited = [...startedAt.keys()].map((worker) => new Promise<void>((resolve) => {
      if (worker.process.exitCode !== null || worker.process.signalCode !== null) return resolve()
      worker.process.once('exit', (workerCode) => { if (workerCode !== 0) failed.push(worker.process.pid ?? 0); resolve() })
    }))
    Promise.all(exited).then(() => {
      clearTimeout(killer)
      if (failed.length > 0) {
        log.error({ workerPids: failed }, 'workers exited with an error while draining')
        exitCode = 1
      }
      onClosed()
      log.info({ exitCode }, 'every worker has exited')
      process.exitCode = exitCode
      setTimeout(() => process.exit(exitCode), 100).unref()
    }, () => process.exit(1))
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))

  for (let i = 0; i < count; i++) fork()
  const port = await listening
  everListened = true
  log.info({ workers: count }, 'every worker is listening')
  console.log(`gateway listening on http://${config.HOST}:${port}`)
}
