import cluster from 'node:cluster'
import promClient from 'prom-client'

export const METRICS_REQUEST = 'gateway:metrics-request'
export const METRICS_RESPONSE = 'gateway:metrics-response'
export interface MetricsRequest { type: typeof METRICS_REQUEST, id: number }
interface MetricsResponse { type: typeof METRICS_RESPONSE, id: number, text?: string, error?: string }

/** How long a worker waits for the primary's summed metrics (prom-client's own per-worker timeout is 5 s). */
const TIMEOUT_MS = 6000

/**
 * The /metrics text: this registry's own, or, in a cluster worker, every worker's summed by the primary
 * (prom-client's AggregatorRegistry: counters and histograms summed, gauges by their `aggregator`).
 */
export function metricsSource (registry: promClient.Registry): () => Promise<string> {
  if (!cluster.isWorker) return () => registry.metrics()
  // The primary asks each worker for this registry (not prom-client's global one) as JSON, then sums them.
  promClient.AggregatorRegistry.setRegistries([registry])
  // eslint-disable-next-line no-new -- constructing it installs the worker's answer to the primary's requests
  new promClient.AggregatorRegistry()
  let nextId = 0
  const waiting = new Map<number, { resolve: (text: string) => void, reject: (err: Error) => void }>()
  process.on('message', (message: MetricsResponse) => {
    if (message?.type !== METRICS_RESPONSE) return
    const pending = waiting.get(message.id)
    if (!pending) return
    waiting.delete(message.id)
    if (message.text !== undefined) pending.resolve(message.text)
    else pending.reject(new Error(`cluster metrics: ${message.error ?? 'no answer'}`))
  })
  return () => new Promise<string>((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error('cluster metrics: the primary did not answer')) }, TIMEOUT_MS)
    waiting.set(id, {
      resolve: (text) => { clearTimeout(timer); resolve(text) },
      reject: (err) => { clearTimeout(timer); reject(err) }
    })
    process.send!({ type: METRICS_REQUEST, id } satisfies MetricsRequest)
  })
}
