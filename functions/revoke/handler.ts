import {
  assertOrigin,
  clearedRefreshCookie,
  httpHandler,
  param,
  type Route,
  refreshCookieName,
} from '../adapters/http.js'
import { revoke } from '../core/revoke.js'
import { findClient } from '../core/service.js'

/**
 * `POST /revoke` (RFC 7009): always 200 with `{}` for a known client, whether
 * or not the token meant anything. Cookie-mode clients revoke their cookie's
 * token and get the cookie cleared, even when there was none (logout is idempotent).
 */
export const revokeRoute: Route = async (request, { deps }) => {
  const client = findClient(deps.settings, param(request, 'client_id'))
  if (client.cookieMode) {
    assertOrigin(request, client)
    const token = request.cookies.get(refreshCookieName(client))
    if (token) await revoke(deps, { token, clientId: client.clientId })
    return { status: 200, body: {}, cookies: [clearedRefreshCookie(client)] }
  }
  await revoke(deps, { token: param(request, 'token'), clientId: client.clientId })
  return { status: 200, body: {} }
}

export const handler = httpHandler(revokeRoute, { body: true })
