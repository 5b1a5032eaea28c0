import { Type } from 'typebox'
import { ID_PATTERN } from './keys.js'

// Shapes shared by the gateway's routes and the stubs, so both validate the same way.
export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.String()
})

export const Id = Type.String({ pattern: ID_PATTERN })
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false })
/** Cents: positive integers up to one million in currency units, so no arithmetic ever leaves the safe range. */
export const Amount = Type.Integer({ minimum: 1, maximum: 100_000_000 })
export const AmountBody = Type.Object({ amount: Amount }, { additionalProperties: false })
export const Balance = Type.Object({ id: Type.String(), balance: Type.Integer() })
export const LoginBody = Type.Object({
  username: Id,
  password: Type.String({ minLength: 1, maxLength: 128 })
}, { additionalProperties: false })
export const LoginReply = Type.Object({ token: Type.String(), userId: Type.String() })
export const OrderBody = Type.Object({
  userId: Id,
  item: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' }),
  quantity: Type.Integer({ minimum: 1, maximum: 10_000 }),
  unitPrice: Type.Integer({ minimum: 1, maximum: 100_000_000 })
}, { additionalProperties: false })
export const Order = Type.Object({
  orderId: Type.String(),
  userId: Type.String(),
  item: Type.String(),
  quantity: Type.Integer(),
  unitPrice: Type.Integer(),
  total: Type.Integer(),
  createdAt: Type.String()
})

/** Responses for errors every gateway route may answer. */
export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((code) => [code, ErrorReply]))
