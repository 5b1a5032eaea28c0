import { fork, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { isLoopbackHost } from './config.js'
import { startConfigOrExit } from './lib/start-secrets.js'
import { runGateway } from './workers.js'

// `npm start`: the four stubs as child processes (each its own process, as in production), then the gateway.
const STUBS = ['auth', 'user', 'order', 'model'] as const
// Secrets generated here (loopback only) reach the stubs through their env: the auth stub signs with the gateway's
// JWT_SECRET and every stub requires the gateway's STUB_CREDENTIAL.
const config = await startConfigOrExit('start', (c) => c.HOST)
const stubEnv: NodeJS.ProcessEnv = { ...process.env, JWT_SECRET: config.JWT_SECRET, STUB_CREDENTIAL: config.STUB_CREDENTIAL }
// The loopback quickstart lets anyone try the API with a made-up load_test_* user; never on an exposed HOST.
if (process.env.STUB_SIGNUP === undefined && isLoopbackHost(config.HOST)) {
  stubEnv.STUB_SIGNUP = 'load_test'
  console.log('start: STUB_SIGNUP=load_test (loopback quickstart): the auth stub creates load_test_* users on first login')
}
const children: ChildProcess[] = []

function startStub (name: typeof STUBS[number]): Promise<void> {
  const child = fork(fileURLToPath(new URL(`./services/${name}/main.js`, import.meta.url)), { env: stubEnv, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      console.log(line)
      if (line.includes(' listening on ')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`${name} stub exited with code ${code}`)))
  })
}

const stopStubs = () => { for (const child of children) child.kill('SIGTERM') }
try {
  await Promise.all(STUBS.map(startStub))
} catch (err) {
  console.error(`start: ${(err as Error).message}`)
  stopStubs()
  process.exit(1)
}
await runGateway(config, stopStubs)
