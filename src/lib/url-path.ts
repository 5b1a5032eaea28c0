/** A request URL without its query string: what logs and audit lines may show (a client may put a token in the query). */
export function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}
