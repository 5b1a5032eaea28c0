import type { GatewayConfig } from '../../config.js'
import { InvalidCredentialsError, UnauthorizedError } from '../../errors.js'
import { bearerToken, createTokenSigner, createTokenVerifier } from '../../lib/jwt.js'
import { errorResponses, LoginBody, LoginReply } from '../../lib/schemas.js'
import { Type } from 'typebox'
import { createStubApp, type StubOptions } from '../stub.js'
import { createMemoryDirectory, createRedisDirectory } from './directory.js'

export async function buildAuthService (config: Pick<GatewayConfig, 'JWT_SECRET' | 'JWT_TTL_SECONDS'>, opts: StubOptions) {
  const app = await createStubApp('auth', opts)
  const directory = opts.redis ? createRedisDirectory(opts.redis) : createMemoryDirectory()
  const sign = createTokenSigner(config.JWT_SECRET, config.JWT_TTL_SECONDS)
  const verify = createTokenVerifier(config.JWT_SECRET)

  app.post('/login', { schema: { body: LoginBody, response: { 200: LoginReply, ...errorResponses(400, 401) } } }, async (request) => {
    const { username, password } = request.body
    if (await directory.login(username, password) !== 'ok') throw new InvalidCredentialsError()
    return { token: sign(username), userId: username }
  })

  app.get('/verify', { schema: { response: { 200: Type.Object({ userId: Type.String() }), ...errorResponses(401) } } }, async (request) => {
    const token = bearerToken(request.headers.authorization)
    if (!token) throw new UnauthorizedError('send "Authorization: Bearer <token>"')
    try {
      return { userId: verify(token).sub }
    } catch {
      throw new UnauthorizedError('the token is invalid or expired')
    }
  })
  return app
}
