import t from 'tap'
import { isLoopback } from '../src/lib/loopback.js'
import { pathOf } from '../src/lib/url-path.js'

t.test('isLoopback: the loopback peers in IPv4, IPv6 and IPv4-mapped form, nothing else', async (t) => {
  for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) t.equal(isLoopback(address), true, address)
  for (const address of [undefined, '', '10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', '127.0.0.1.example', 'localhost']) {
    t.equal(isLoopback(address), false, String(address))
  }
})

t.test('pathOf: the URL without its query string', async (t) => {
  t.equal(pathOf('/users/alice?access_token=secret'), '/users/alice')
  t.equal(pathOf('/users/alice'), '/users/alice')
  t.equal(pathOf('/?a=1?b=2'), '/')
  t.equal(pathOf(''), '')
})
