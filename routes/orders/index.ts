import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ForbiddenError } from '../../src/errors.js'
import { errorResponses, Order, OrderBody } from '../../src/lib/schemas.js'

const OrderParams = Type.Object({ id: Type.String({ pattern: '^ord_[0-9a-f-]{36}$' }) }, { additionalProperties: false })

const orders: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/', {
    prefixTrailingSlash: 'no-slash', // POST /orders only, as the API and /openapi.json say
    config: { auth: true, owner: 'body.userId', userLock: true },
    schema: { body: OrderBody, response: { 201: Order, ...errorResponses(400, 401, 403, 409, 429, 502, 503, 504) } }
  }, (request, reply) => reply.proxy('order', { method: 'POST', path: '/orders', body: JSON.stringify(request.body) }))

  // Owner only: the gateway reads the order's userId before handing it out.
  fastify.get('/:id', {
    config: { auth: true },
    schema: { params: OrderParams, response: { 200: Order, ...errorResponses(400, 401, 403, 404, 429, 502, 503, 504) } }
  }, (request, reply) => reply.proxy('order', { method: 'GET', path: `/orders/${request.params.id}` }, (answer) => {
    if (answer.statusCode === 200 && (JSON.parse(answer.body) as { userId: string }).userId !== request.userId) {
      fastify.audit({ type: 'access_denied', outcome: 'denied', detail: `403 order ${request.params.id} belongs to another user` }, request)
      throw new ForbiddenError(`order ${request.params.id} belongs to another user`)
    }
  }))
}

export default orders
