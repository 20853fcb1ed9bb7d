/**
 * URL parts by string, not through the URL class: React Native's `URL` throws on `origin`
 * and `pathname` ("not implemented"), and the client needs only these two.
 */

const ORIGIN = /^([a-z][a-z\d+.-]*):\/\/([^/?#]*)/i
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: ':80', https: ':443' }

/** `https://Auth.Example.com:443/token?x` -> `https://auth.example.com`, as `URL.origin` says it. */
export function originOf(url: string): string {
  const match = ORIGIN.exec(url)
  if (!match) return url
  const scheme = (match[1] as string).toLowerCase()
  let host = (match[2] as string).toLowerCase()
  const port = DEFAULT_PORTS[scheme]
  if (port && host.endsWith(port)) host = host.slice(0, -port.length)
  return `${scheme}://${host}`
}

/**
 * RFC 9449 §4.2: the `htu` of a proof is the request's URI with no query and no
 * fragment, its origin normalized as the URL class would (the server compares them so).
 */
export function withoutQuery(url: string): string {
  const match = ORIGIN.exec(url)
  if (!match) return url.replace(/[?#].*$/, '')
  const path = url.slice(match[0].length).replace(/[?#].*$/, '')
  return `${originOf(url)}${path || '/'}`
}
