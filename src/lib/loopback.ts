const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** True for a loopback peer address (the socket's own, never a forwarded header's), IPv4, IPv6 or IPv4-mapped. */
export function isLoopback (address: string | undefined): boolean {
  return LOOPBACK.has(address ?? '')
}
