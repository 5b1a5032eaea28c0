import { readFileSync } from 'node:fs'
import { waitFor } from '../helper.js'

/** The worker pids of a cluster primary (Linux: the kernel's list of its children). */
export function workerPids (primaryPid: number): number[] {
  try {
    return readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** Waits until the primary has `count` workers and returns their pids. */
export async function waitForWorkers (primaryPid: number, count: number, what = `${count} workers`): Promise<number[]> {
  return waitFor(() => { const pids = workerPids(primaryPid); return pids.length === count && pids }, { timeoutMs: 20_000, what })
}

/** Parses the JSON lines of a captured output, skipping the plain ones. */
export function jsonLines (text: string): Array<Record<string, unknown>> {
  return text.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    try { return [JSON.parse(line) as Record<string, unknown>] } catch { return [] }
  })
}
