import { runStub } from '../stub.js'
import { buildOrderService } from './app.js'

await runStub('order', (config) => config.ORDER_PORT, buildOrderService)
