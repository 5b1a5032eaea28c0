import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigSchema } from '../src/config.js'
import { ROOT } from '../scripts/lib/stack.mjs'

t.test('.env.example lists every variable of the schema with its default', async (t) => {
  const example = readFileSync(join(ROOT, '.env.example'), 'utf8')
  const lines = new Map(example.split('\n').filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 1)]))
  for (const [name, schema] of Object.entries(ConfigSchema.properties) as Array<[string, { default?: unknown }]>) {
    t.ok(lines.has(name), `${name} is in .env.example`)
    t.equal(lines.get(name), schema.default === undefined ? '' : String(schema.default), `${name} shows its default`)
  }
  t.same([...lines.keys()].filter((k) => !(k in ConfigSchema.properties)), [], 'no variable the code does not read')
})
