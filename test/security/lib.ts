// What the security regression tests share: a raw socket that reads an answer until the server closes it.
import { connect } from 'node:net'
import { SECURITY_HEADERS } from '../../src/lib/security-headers.js'

export interface RawExchange { text: string, ms: number, closedByServer: boolean }

/** Writes `bytes` (nothing when empty) and reads until the server closes the socket or `deadlineMs` passes. */
export function exchange (port: number, bytes: string | Buffer, { deadlineMs = 10_000, localAddress }: { deadlineMs?: number, localAddress?: string } = {}): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = Date.now()
    const chunks: Buffer[] = []
    const socket = connect({ host: '127.0.0.1', port, localAddress })
    let closedByServer = true
    const timer = setTimeout(() => { closedByServer = false; socket.destroy() }, deadlineMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started, closedByServer })
    })
    if (bytes.length > 0) socket.write(bytes)
  })
}

export interface ParsedAnswer { status: number, headers: Record<string, string>, body: unknown }

/** Status, lower-cased headers and the JSON body of one HTTP/1.1 answer (Content-Length framed). */
export function parse (text: string): ParsedAnswer | undefined {
  const headEnd = text.indexOf('\r\n\r\n')
  if (headEnd < 0) return undefined
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
  let body: unknown
  try { body = JSON.parse(text.slice(headEnd + 4)) } catch { body = text.slice(headEnd + 4) }
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

/** The security headers an answer carries, to compare with SECURITY_HEADERS. */
export function securityHeadersOf (headers: Record<string, string>): Record<string, string | undefined> {
  return Object.fromEntries(Object.keys(SECURITY_HEADERS).map((name) => [name, headers[name]]))
}
export { SECURITY_HEADERS }
