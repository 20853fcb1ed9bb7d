import { forwardToHome, type HomeRouting } from '../adapters/home-forwarding.js'
import {
  assertOrigin,
  clearedRefreshCookie,
  param,
  type Route,
  refreshCookieName,
  requestOrigin,
} from '../adapters/http.js'
import type { Client } from '../core/clients.js'
import { type RevokeDeps as CoreRevokeDeps, revoke } from '../core/revoke.js'
import { findClient } from '../core/service.js'

export interface RevokeDeps extends CoreRevokeDeps, HomeRouting {
  readonly clients: ReadonlyMap<string, Client>
}

/**
 * `POST /revoke` (RFC 7009): always 200 with `{}` for a known client, whether
 * or not the token meant anything. Cookie-mode clients revoke their cookie's
 * token and get the cookie cleared, even when there was none (logout is idempotent).
 */
export const revokeRoute: Route<RevokeDeps> = async (request, deps) => {
  const client = findClient(deps.clients, param(request, 'client_id'))
  // With several regions, in the session's home: the home's rotations write the session item
  // too, and a revocation written elsewhere would lose to a later one (last writer wins).
  const token = client.cookieMode
    ? request.cookies.get(refreshCookieName(client))
    : request.params.token
  if (client.cookieMode) assertOrigin(request, client)
  const forwarded = await forwardToHome(request, deps, token)
  if (forwarded && 'answer' in forwarded) {
    return { status: forwarded.answer.statusCode, verbatim: forwarded.answer }
  }
  // A home that cannot be reached rotates nothing meanwhile: revoked here, the session ends
  // everywhere once the home is back and has replicated (docs/multi-region.md).
  if (client.cookieMode) {
    assertOrigin(request, client)
    const token = request.cookies.get(refreshCookieName(client))
    if (token) await revoke(deps, { token, client, origin: requestOrigin(request) })
    return { status: 200, body: {}, cookies: [clearedRefreshCookie(client)] }
  }
  // `token_type_hint` is optional and may be ignored (RFC 7009 §2.1): only refresh tokens revoke.
  await revoke(deps, { token: param(request, 'token'), client, origin: requestOrigin(request) })
  return { status: 200, body: {} }
}
