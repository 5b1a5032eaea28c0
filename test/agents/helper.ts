import type { Gateway } from '../../src/app.js'

/** The admin token every agents test starts its gateways with. */
export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef'
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

export interface IssuedKey { key: string, keyId: string, agentId: string, tier: string, createdAt: string, expiresAt: string | null }

/** Issues a key through the admin API, in process (an app) or over HTTP (a base URL); throws unless 201. */
export async function issueKey (target: Gateway | string, agentId: string, body: { tier?: string, expiresInSeconds?: number } = {}): Promise<IssuedKey> {
  const url = `/admin/agents/${encodeURIComponent(agentId)}/keys`
  if (typeof target === 'string') {
    const res = await fetch(`${target}${url}`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (res.status !== 201) throw new Error(`issuing a key answered ${res.status}: ${await res.text()}`)
    return await res.json() as IssuedKey
  }
  const res = await target.inject({ method: 'POST', url, headers: admin, payload: body })
  if (res.statusCode !== 201) throw new Error(`issuing a key answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** POST /api/request over HTTP with an optional key; returns status, body and headers. */
export async function spendOver (baseUrl: string, tokens: number, opts: { key?: string, agentId?: string } = {}) {
  const res = await fetch(`${baseUrl}/api/request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.key ? { 'x-api-key': opts.key } : {}) },
    body: JSON.stringify(opts.agentId === undefined ? { tokens } : { agentId: opts.agentId, tokens })
  })
  return { status: res.status, headers: res.headers, body: await res.json() as Record<string, unknown> }
}
