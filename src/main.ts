import { fork, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { configOrExit, startGateway } from './server.js'

// `npm start`: the four stubs as child processes (each its own process, as in production), then the gateway.
const STUBS = ['auth', 'user', 'order', 'model'] as const
const config = configOrExit()
const children: ChildProcess[] = []

function startStub (name: typeof STUBS[number]): Promise<void> {
  const child = fork(fileURLToPath(new URL(`./services/${name}/main.js`, import.meta.url)), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
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
await startGateway(config, stopStubs)
