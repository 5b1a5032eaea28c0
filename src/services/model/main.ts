import { runStub } from '../stub.js'
import { buildModelService } from './app.js'

await runStub('model', (config) => config.MODEL_PORT, buildModelService)
