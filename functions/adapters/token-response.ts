import type { TokenResult } from '../core/service.js'
import { type HttpResponse, refreshCookie } from './http.js'

/**
 * RFC 6749 §5.1 token response. For a cookie-mode client the refresh token
 * goes into its `__Host-` cookie and stays out of the body, out of reach of JS.
 */
export function tokenResponse(result: TokenResult, now: number): HttpResponse {
  const { client, accessToken, refreshToken, scope } = result
  const body = {
    access_token: accessToken.token,
    token_type: 'Bearer',
    expires_in: accessToken.expiresIn,
    ...(client.cookieMode ? {} : { refresh_token: refreshToken }),
    scope,
  }
  return client.cookieMode
    ? {
        status: 200,
        body,
        cookies: [refreshCookie(client, refreshToken, result.sessionExpiresAt, now)],
      }
    : { status: 200, body }
}
