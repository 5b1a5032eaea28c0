import { runStub } from '../stub.js'
import { buildAuthService } from './app.js'

await runStub('auth', (config) => config.AUTH_PORT, buildAuthService, true)
