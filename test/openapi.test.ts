import t from 'tap'
import { build } from './helper.js'

t.test('/openapi.json lists each route once, at the path the API documents (no trailing slash)', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const paths = Object.keys(res.json().paths as Record<string, unknown>)
  t.ok(paths.includes('/health'), '/health')
  t.ok(paths.includes('/orders'), '/orders')
  t.same(paths.filter((path) => path.length > 1 && path.endsWith('/')), [], 'no path ends with a slash')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'GET /health answers')
  t.equal((await app.inject({ method: 'POST', url: '/orders', payload: {} })).statusCode, 401, 'POST /orders is the route (401 without a token)')
})
