import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../../scripts/lib/stack.mjs'
import { JWT_SECRET } from '../helper.js'

t.test('more than one worker without REDIS_URL: refused at start, naming both variables', async (t) => {
  for (const workers of ['2', 'auto']) {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'server.js')], {
      env: { ...process.env, JWT_SECRET, PORT: '0', GATEWAY_WORKERS: workers, REDIS_URL: '', REDIS_CLUSTER_NODES: '' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => { stderr += chunk })
    const [code] = await once(child, 'exit')
    t.equal(code, 1, `GATEWAY_WORKERS=${workers}: exit code 1`)
    t.match(stderr, /GATEWAY_WORKERS/, 'the message names GATEWAY_WORKERS')
    t.match(stderr, /REDIS_URL/, 'the message names REDIS_URL')
  }
})
