import type { ChildProcess } from 'node:child_process'

export const ROOT: string
export function freePort (): Promise<number>
export const LAB_STUB_CREDENTIAL: string
export const LAB_STUB_ENV: { STUB_CREDENTIAL: string, STUB_SIGNUP: 'load_test' }
/** Resolves with the first truthy value `check` returns. */
export function waitFor<T> (check: () => T | Promise<T>, opts?: { timeoutMs?: number, intervalMs?: number, what?: string }): Promise<Exclude<T, false | null | undefined | 0 | ''>>
export interface RedisServer { port: number, url: string, dir: string, process: ChildProcess | undefined, start (): Promise<void>, kill (signal?: NodeJS.Signals): Promise<void>, stop (): Promise<void> }
export function startRedis (opts?: { port?: number, persistent?: boolean, extraArgs?: string[] }): Promise<RedisServer>
export interface NodeProcess { name: string, url: string, port: number, process: ChildProcess, stderr (): string, /** with output 'capture': all stdout and stderr */ output (): string }
export function startNodeProcess (name: string, script: string, env: Record<string, string>, opts?: { timeoutMs?: number, output?: 'ignore' | 'inherit' | 'capture', nodeArgs?: string[] }): Promise<NodeProcess>
export interface Stub { name: string, port: number, url: string, process: ChildProcess | undefined, start (): Promise<void>, kill (signal?: NodeJS.Signals): Promise<void>, stop (): Promise<void>, restart (): Promise<void> }
export type StubName = 'auth' | 'user' | 'order' | 'model'
export function startStub (name: StubName, env?: Record<string, string>, port?: number): Promise<Stub>
export function startStubs<N extends StubName = StubName> (env?: Record<string, string>, names?: readonly N[]): Promise<Record<N, Stub> & { gatewayEnv: Record<string, string>, stop (): Promise<void> }>
export function startGateway (env?: Record<string, string>, opts?: { output?: 'ignore' | 'inherit' | 'capture', timeoutMs?: number }): Promise<NodeProcess & { stop (signal?: NodeJS.Signals): Promise<void> }>
export function setFault (stub: { url: string }, mode: 'ok' | 'fail' | 'slow' | 'hang', delayMs?: number): Promise<void>
export function servedCount (stub: { url: string }): Promise<number>
export function reapOnExit (name: string): { track (get: () => ChildProcess | undefined): () => ChildProcess | undefined, killAll (): void }
