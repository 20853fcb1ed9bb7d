/**
 * What the token service's answers mean: a token response, an OAuth error
 * (transient or not, with its `Retry-After`), a refused bearer token.
 */
import { TokenClientError } from './errors.js'
import type { Clock } from './transport.js'

/** A successful answer of /login or /token. */
export interface TokenResponse {
  readonly access_token: string
  /** `Bearer`, or `DPoP` for a token bound to the client's DPoP key. */
  readonly token_type?: string
  readonly expires_in: number
  /** Body mode only: in cookie mode it is the `HttpOnly` cookie. */
  readonly refresh_token?: string
}

/** A resource server's 401 asking for its DPoP nonce (RFC 9449 §9), with the nonce. */
export function asksDpopNonce(response: Response): boolean {
  if (response.status !== 401 || !response.headers.get('dpop-nonce')) return false
  return /error="?use_dpop_nonce"?/i.test(response.headers.get('www-authenticate') ?? '')
}

/** A 401 that says the bearer token was refused (RFC 6750), or does not say why. */
export function rejectsToken(response: Response): boolean {
  if (response.status !== 401) return false
  const challenge = response.headers.get('www-authenticate')
  // Cross-origin answers hide the header unless the API exposes it: assume the token.
  if (!challenge || !/error=/i.test(challenge)) return true
  return /error="?invalid_token"?/i.test(challenge)
}

/** The server's OAuth error, or `http_<status>` for an answer without one (a proxy's page). */
export function errorFromResponse(
  response: Response,
  text: string,
  clock: Clock,
): TokenClientError {
  let error = `http_${response.status}`
  let description = `the token service answered ${response.status}`
  try {
    const body = JSON.parse(text) as { error?: unknown; error_description?: unknown }
    if (typeof body.error === 'string') error = body.error
    if (typeof body.error_description === 'string') description = body.error_description
  } catch {
    // not JSON (a proxy's error page): keep the status
  }
  const status = response.status
  return new TokenClientError(error, description, {
    status,
    transient: status === 408 || status === 429 || status >= 500,
    retryAfterMs: retryAfter(response.headers.get('retry-after'), clock),
  })
}

/** `Retry-After` in milliseconds: seconds, or an HTTP date on the client's clock. */
function retryAfter(value: string | null, clock: Clock): number | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - clock.now())
}

/** The body of a 2xx from /login or /token; `invalid_response` when it carries no access token. */
export function parseTokenResponse(text: string): TokenResponse {
  let body: Partial<TokenResponse>
  try {
    body = JSON.parse(text) as Partial<TokenResponse>
  } catch {
    throw new TokenClientError('invalid_response', 'the token response is not JSON')
  }
  if (
    typeof body?.access_token !== 'string' ||
    typeof body.expires_in !== 'number' ||
    !(body.expires_in > 0)
  ) {
    throw new TokenClientError('invalid_response', 'the token response has no access token')
  }
  return body as TokenResponse
}
