import { InsufficientFundsError, StaleFencingTokenError } from '../../errors.js'
import { AmountBody, Balance, errorResponses, IdParams } from '../../lib/schemas.js'
import { createStubApp, fencingToken, type StubOptions } from '../stub.js'
import { createMemoryLedger, createRedisLedger } from './ledger.js'

export async function buildUserService (_config: unknown, opts: StubOptions) {
  const app = await createStubApp('user', opts)
  const ledger = opts.redis ? createRedisLedger(opts.redis) : createMemoryLedger()

  app.get('/users/:id', { schema: { params: IdParams, response: { 200: Balance, ...errorResponses(400) } } }, async (request) => {
    return { id: request.params.id, balance: await ledger.balance(request.params.id) }
  })

  for (const [operation, sign] of [['deposit', 1], ['withdraw', -1]] as const) {
    app.post(`/users/:id/${operation}`, {
      schema: { params: IdParams, body: AmountBody, response: { 200: Balance, ...errorResponses(400, 409) } }
    }, async (request) => {
      const { id } = request.params
      const result = await ledger.apply(id, sign * request.body.amount, fencingToken(request.headers['x-fencing-token']))
      if (result.status === 'stale_fence') throw new StaleFencingTokenError(id)
      if (result.status === 'insufficient') throw new InsufficientFundsError(id)
      return { id, balance: result.balance }
    })
  }
  return app
}
