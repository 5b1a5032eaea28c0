import { randomUUID } from 'node:crypto'
import { Type } from 'typebox'
import { NotFoundError, StaleFencingTokenError } from '../../errors.js'
import { errorResponses, IdParams, Order, OrderBody } from '../../lib/schemas.js'
import { createStubApp, fencingToken, type StubOptions } from '../stub.js'
import { createMemoryOrderBook, createRedisOrderBook } from './book.js'

export async function buildOrderService (_config: unknown, opts: StubOptions) {
  const app = await createStubApp('order', opts)
  const book = opts.redis ? createRedisOrderBook(opts.redis) : createMemoryOrderBook()

  app.post('/orders', { schema: { body: OrderBody, response: { 201: Order, ...errorResponses(400, 409) } } }, async (request, reply) => {
    const { userId, item, quantity, unitPrice } = request.body
    const order = { orderId: `ord_${randomUUID()}`, userId, item, quantity, unitPrice, total: quantity * unitPrice, createdAt: new Date().toISOString() }
    if (await book.create(order, fencingToken(request.headers['x-fencing-token'])) === 'stale_fence') throw new StaleFencingTokenError(userId)
    return reply.code(201).send(order)
  })

  app.get('/orders/:id', {
    schema: { params: Type.Object({ id: Type.String({ pattern: '^ord_[0-9a-f-]{36}$' }) }), response: { 200: Order, ...errorResponses(400, 404) } }
  }, async (request) => {
    const order = await book.get(request.params.id)
    if (!order) throw new NotFoundError(`order ${request.params.id}`)
    return order
  })

  app.get('/users/:id/orders', { schema: { params: IdParams, response: { 200: Type.Array(Order), ...errorResponses(400) } } }, async (request) => {
    return book.listByUser(request.params.id)
  })
  return app
}
