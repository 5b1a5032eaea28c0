// Four fixed headers on every answer, the parser's and the router's errors included; @fastify/helmet's defaults (CSP
// and friends) are for HTML pages, not a JSON API.
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
} as const
