// Finding 4 (hoarding clients): one address holding more than CONNECTIONS_PER_IP_MAX sockets gets the extra ones
// closed at once, and another address is still served. Before the fix every socket stayed open (3 000 from one
// address were seen); this test saw all 8 open.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { build, sample, waitFor } from '../helper.js'
import { exchange, parse } from './lib.js'

const CAP = 3
const EXTRA = 5

t.test(`one address keeps at most CONNECTIONS_PER_IP_MAX=${CAP} sockets; another address is still served`, async (t) => {
  const app = await build(t, { CONNECTIONS_PER_IP_MAX: String(CAP), KEEP_ALIVE_TIMEOUT_MS: '60000', HEADERS_TIMEOUT_MS: '60000' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port

  const sockets: Array<{ socket: Socket, closed: boolean }> = []
  t.teardown(() => { for (const { socket } of sockets) socket.destroy() })
  for (let i = 0; i < CAP + EXTRA; i++) {
    const entry = { socket: connect({ host: '127.0.0.1', port }), closed: false }
    entry.socket.on('error', () => {})
    entry.socket.on('close', () => { entry.closed = true })
    sockets.push(entry)
    await new Promise((resolve) => entry.socket.once('connect', resolve))
  }
  await waitFor(() => sockets.filter((s) => s.closed).length >= EXTRA, { timeoutMs: 5000, what: `${EXTRA} sockets closed by the gateway` })
  // The server's own count, from the inside: only CAP of the sockets are connections it holds.
  const held = await new Promise<number>((resolve, reject) => app.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  t.equal(held, CAP, `the gateway holds ${CAP} connections from 127.0.0.1`)
  t.same(sockets.map((s) => s.closed), [...Array(CAP).fill(false), ...Array(EXTRA).fill(true)], 'the first sockets stay open, the extra ones were closed')

  // 127.0.0.2 is another client address on the loopback interface.
  const other = await exchange(port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { localAddress: '127.0.0.2' })
  t.same(parse(other.text)?.body, { status: 'ok' }, 'another address is served while the first holds its cap')
  const metrics = await app.inject({ url: '/metrics' })
  t.equal(sample(metrics.body, 'gateway_connections_refused_total'), EXTRA, `gateway_connections_refused_total counts the ${EXTRA} refused`)

  // A socket given back frees its place.
  sockets[0].socket.destroy()
  await waitFor(async () => (await new Promise<number>((resolve) => app.server.getConnections((_e, n) => resolve(n)))) === CAP - 1, { timeoutMs: 5000, what: 'the gateway saw the close' })
  const again = await exchange(port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
  t.same(parse(again.text)?.body, { status: 'ok' }, 'after one socket closes, the first address is served again')
})
