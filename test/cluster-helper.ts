// A real Redis Cluster for tests: N masters from Debian's redis-server on free loopback ports, joined with
// `redis-cli --cluster create`, torn down at teardown.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { freePort, startRedis, waitFor, type RedisServer } from '../scripts/lib/stack.mjs'

const run = promisify(execFile)

export interface TestCluster {
  nodes: RedisServer[]
  /** REDIS_CLUSTER_NODES for a gateway: host:port,host:port,… */
  nodesEnv: string
}

async function clusterState (port: number): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info'])
  return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown'
}

export async function clusterFor (t: Test, masters = 3): Promise<TestCluster> {
  const nodes: RedisServer[] = []
  t.teardown(() => Promise.all(nodes.map((node) => node.stop())))
  for (let i = 0; i < masters; i++) {
    // The cluster bus port is explicit (not port + 10000, which may be taken or out of range).
    const busPort = await freePort()
    nodes.push(await startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-node-timeout', '3000'] }))
  }
  const addresses = nodes.map((node) => `127.0.0.1:${node.port}`)
  await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 })
  const cluster = { nodes, nodesEnv: addresses.join(',') }
  await clusterReady(cluster)
  return cluster
}

/** Every node agrees the cluster is up (after creation, or after a killed master rejoined and its FAIL flag cleared). */
export async function clusterReady (cluster: TestCluster): Promise<void> {
  await waitFor(async () => (await Promise.all(cluster.nodes.map((node) => clusterState(node.port)))).every((state) => state === 'ok'),
    { timeoutMs: 20_000, intervalMs: 100, what: 'cluster_state:ok on every node' })
}

/** Which master (by port) holds each key, from CLUSTER KEYSLOT and CLUSTER SLOTS, so tests can place keys on nodes. */
export async function ownersOf (cluster: TestCluster, keys: string[]): Promise<number[]> {
  // Asks the last node, so a test that kills nodes[0] can still place keys afterwards.
  const client = new Redis(cluster.nodes[cluster.nodes.length - 1].port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const ranges = await client.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number, ...unknown[]]]>
    const pipeline = client.pipeline()
    for (const key of keys) pipeline.call('CLUSTER', 'KEYSLOT', key)
    const slots = (await pipeline.exec())!.map(([err, slot]) => { if (err) throw err; return Number(slot) })
    return slots.map((slot) => {
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)
      if (!owner) throw new Error(`no node serves slot ${slot}`)
      return owner[2][1]
    })
  } finally {
    client.disconnect()
  }
}

export async function ownerOf (cluster: TestCluster, key: string): Promise<number> {
  return (await ownersOf(cluster, [key]))[0]
}
