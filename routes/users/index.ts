import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AmountBody, Balance, errorResponses, IdParams, Order } from '../../src/lib/schemas.js'

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  const readErrors = errorResponses(400, 401, 403, 429, 502, 503, 504)
  const writeErrors = errorResponses(400, 401, 403, 409, 429, 502, 503, 504)

  fastify.get('/:id', {
    config: { auth: true, owner: 'params.id' },
    schema: { params: IdParams, response: { 200: Balance, ...readErrors } }
  }, (request, reply) => reply.proxy('user', { method: 'GET', path: `/users/${request.params.id}` }))

  for (const operation of ['deposit', 'withdraw'] as const) {
    fastify.post(`/:id/${operation}`, {
      config: { auth: true, owner: 'params.id', userLock: true },
      schema: { params: IdParams, body: AmountBody, response: { 200: Balance, ...writeErrors } }
    }, (request, reply) => reply.proxy('user', { method: 'POST', path: `/users/${request.params.id}/${operation}`, body: JSON.stringify(request.body) }))
  }

  fastify.get('/:id/orders', {
    config: { auth: true, owner: 'params.id' },
    schema: { params: IdParams, response: { 200: Type.Array(Order), ...readErrors } }
  }, (request, reply) => reply.proxy('order', { method: 'GET', path: `/users/${request.params.id}/orders` }))
}

export default users
