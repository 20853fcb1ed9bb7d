import {
  assertOrigin,
  clearedRefreshCookie,
  type HttpRequest,
  httpHandler,
  optionalParam,
  param,
  type Route,
  refreshCookieName,
} from '../adapters/http.js'
import { tokenResponse } from '../adapters/token-response.js'
import type { Client } from '../core/clients.js'
import { InvalidGrant, OAuthError, UnsupportedGrantType } from '../core/errors.js'
import { refresh } from '../core/refresh.js'
import { findClient } from '../core/service.js'

/** `POST /token`: RFC 6749 §6 refresh. Cookie-mode clients send the token as their cookie. */
export const tokenRoute: Route = async (request, { deps }) => {
  if (param(request, 'grant_type') !== 'refresh_token') throw new UnsupportedGrantType()
  const client = findClient(deps.settings, param(request, 'client_id'))
  if (client.cookieMode) assertOrigin(request, client)
  try {
    const result = await refresh(deps, {
      refreshToken: presentedToken(request, client),
      clientId: client.clientId,
      scope: optionalParam(request, 'scope'),
    })
    return tokenResponse(result, deps.clock.now())
  } catch (error) {
    // A dead session's cookie is cleared, so the browser stops sending it.
    if (client.cookieMode && error instanceof OAuthError && error.error === 'invalid_grant') {
      throw withCookie(error, clearedRefreshCookie(client))
    }
    throw error
  }
}

function presentedToken(request: HttpRequest, client: Client): string {
  if (!client.cookieMode) return param(request, 'refresh_token')
  const token = request.cookies.get(refreshCookieName(client))
  if (!token) throw new InvalidGrant('cookie missing')
  return token
}

function withCookie(error: OAuthError, cookie: string): OAuthError {
  Object.assign(error.headers, { 'Set-Cookie': cookie })
  return error
}

export const handler = httpHandler(tokenRoute, { body: true, warmKeys: 'active' })
