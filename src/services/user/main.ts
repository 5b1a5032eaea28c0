import { runStub } from '../stub.js'
import { buildUserService } from './app.js'

await runStub('user', (config) => config.USER_PORT, buildUserService)
