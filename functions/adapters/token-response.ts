import type { TokenResult } from '../core/service.js'
import { type HttpResponse, refreshCookie } from './http.js'

/**
 * RFC 6749 §5.1 token response. For a cookie-mode client the refresh token
 * goes into its `__Host-` cookie and stays out of the body, out of reach of JS.
 * A token bound to a DPoP key is of type `DPoP` (RFC 9449 §5). `headers` go
 * with it (a fresh `DPoP-Nonce`).
 */
export function tokenResponse(
  result: TokenResult,
  now: number,
  headers?: Record<string, string>,
): HttpResponse {
  const { client, accessToken, refreshToken, scope } = result
  const body = {
    access_token: accessToken.token,
    token_type: accessToken.claims.cnf ? 'DPoP' : 'Bearer',
    expires_in: accessToken.expiresIn,
    ...(client.cookieMode ? {} : { refresh_token: refreshToken }),
    scope,
  }
  return {
    status: 200,
    body,
    ...(headers && { headers }),
    ...(client.cookieMode && {
      cookies: [refreshCookie(client, refreshToken, result.sessionExpiresAt, now)],
    }),
  }
}
