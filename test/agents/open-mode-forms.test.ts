// AGENT_AUTH=open (the IRL seed's semantics) and form bodies, agent ids with dots, refused characters, in both modes.
import t from 'tap'
import { build } from '../helper.js'
import { ADMIN_TOKEN, issueKey } from './helper.js'

const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString()
})

t.test('open mode: the agent comes from the body, form or JSON, and the per-address limit does not decide', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'open', RATE_LIMIT_MAX: '3', AGENT_QUOTA_CAPACITY: '5', AGENT_QUOTA_REFILL_PER_SECOND: '0.001' })
  // k6's http.post(url, { agentId: `agent-${Math.random() * 10000}`, tokens: 1 }) sends exactly this.
  const seed = await app.inject({ method: 'POST', url: '/api/request', ...form({ agentId: 'agent-1234.5678901234', tokens: '1' }) })
  t.equal(seed.statusCode, 200, 'the seed\'s form body with a dotted id: 200')
  t.same(seed.json(), { allowed: true, agentId: 'agent-1234.5678901234', spent: 1, remaining: 4, capacity: 5 }, 'tokens=1 counted as the number 1')
  const results = []
  for (let i = 0; i < 5; i++) results.push((await app.inject({ method: 'POST', url: '/api/request', payload: { agentId: 'agent-1234.5678901234', tokens: 1 } })).statusCode)
  t.same(results, [200, 200, 200, 200, 429], 'the agent\'s bucket (5) decides, not RATE_LIMIT_MAX (3) per address')
  t.equal((await app.inject({ method: 'POST', url: '/api/request', payload: { agentId: 'other.agent', tokens: 1 } })).statusCode, 200, 'another agent from the same address has its own bucket')
  const missing = await app.inject({ method: 'POST', url: '/api/request', ...form({ tokens: '1' }) })
  t.same(missing.json(), { statusCode: 400, error: 'Bad Request', message: "body must have required property 'agentId'", code: 'GW_BAD_REQUEST' }, 'open mode needs the agentId')
})

for (const mode of ['open', 'key'] as const) {
  t.test(`form bodies and agent ids (${mode} mode)`, async (t) => {
    const app = await build(t, { AGENT_AUTH: mode, ADMIN_TOKEN, AGENT_QUOTA_REFILL_PER_SECOND: '0.001' })
    const agentId = 'agent-42.5'
    const headers = mode === 'key' ? { 'x-api-key': (await issueKey(app, agentId)).key } : {}
    const ok = await app.inject({ method: 'POST', url: '/api/request', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: `agentId=${agentId}&tokens=7` })
    t.same(ok.json(), { allowed: true, agentId, spent: 7, remaining: 93, capacity: 100 }, 'form-encoded: 200, tokens a number')

    const bad = async (payload: string) => (await app.inject({ method: 'POST', url: '/api/request', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload })).json()
    t.same(await bad(`agentId=${agentId}&tokens=abc`), { statusCode: 400, error: 'Bad Request', message: 'body/tokens must be integer', code: 'GW_BAD_REQUEST' }, 'a non-number stays a 400')
    t.equal((await bad(`agentId=${agentId}&tokens=1&tokens=2`)).statusCode, 400, 'a repeated field is refused, not guessed')
    t.equal((await bad(`agentId=${agentId}&tokens=1.5`)).statusCode, 400, 'a fraction is refused')
    const json = await app.inject({ method: 'POST', url: '/api/request', headers, payload: { agentId, tokens: '1' } })
    t.equal(json.statusCode, 400, 'JSON keeps strict types: "1" is not a number there')

    for (const refused of ['agent{1}', 'agent 1', 'agent\t1', 'agent\u00001', 'a'.repeat(129)]) {
      const res = await app.inject({ method: 'POST', url: '/api/request', headers, payload: { agentId: refused, tokens: 1 } })
      // Key mode: a mismatching id is 403 before validation; open mode: the pattern refuses it (400).
      t.equal(res.statusCode, mode === 'open' ? 400 : 403, `${JSON.stringify(refused).slice(0, 20)} refused`)
    }
    t.equal((await app.inject({ method: 'GET', url: '/api/quota/agent%7B1%7D', headers })).statusCode, mode === 'open' ? 400 : 403, 'braces in the quota path refused')
    const quota = await app.inject({ method: 'GET', url: `/api/quota/${agentId}`, headers })
    t.equal(quota.json().remaining, 93, 'the dotted id reads its own quota')
  })
}

t.test('keys issue for ids with dots; braces and whitespace are refused by the admin API', async (t) => {
  const app = await build(t, { AGENT_AUTH: 'key', ADMIN_TOKEN })
  t.equal((await issueKey(app, 'agent-1234.5678')).agentId, 'agent-1234.5678')
  for (const id of ['a%7Bb%7D', 'a%20b', 'a%0Ab']) {
    t.equal((await app.inject({ method: 'POST', url: `/admin/agents/${id}/keys`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: {} })).statusCode, 400, `${decodeURIComponent(id).replace('\n', '\\n')}: 400`)
  }
})
