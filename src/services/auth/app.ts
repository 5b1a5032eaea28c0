import type { GatewayConfig } from '../../config.js'
import { InvalidCredentialsError } from '../../errors.js'
import { createTokenSigner } from '../../lib/jwt.js'
import { errorResponses, LoginBody, LoginReply } from '../../lib/schemas.js'
import { createStubApp, type StubOptions } from '../stub.js'
import { createMemoryDirectory, createRedisDirectory } from './directory.js'

export async function buildAuthService (config: Pick<GatewayConfig, 'JWT_TTL_SECONDS' | 'STUB_SIGNUP'> & { JWT_SECRET: string }, opts: StubOptions) {
  const app = await createStubApp('auth', opts)
  // STUB_SIGNUP=load_test (the lab): a load_test_* user is created on its first login; otherwise nobody signs up.
  const signup = config.STUB_SIGNUP === 'load_test'
  const directory = opts.redis ? createRedisDirectory(opts.redis, signup) : createMemoryDirectory(signup)
  const sign = createTokenSigner(config.JWT_SECRET, config.JWT_TTL_SECONDS)

  app.post('/login', { schema: { body: LoginBody, response: { 200: LoginReply, ...errorResponses(400, 401) } } }, async (request) => {
    const { username, password } = request.body
    if (await directory.login(username, password) !== 'ok') throw new InvalidCredentialsError()
    return { token: sign(username), userId: username }
  })
  return app
}
