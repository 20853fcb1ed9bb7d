import {
  assertOrigin,
  clearedRefreshCookie,
  type HttpRequest,
  optionalParam,
  param,
  type Route,
  refreshCookieName,
  requestOrigin,
} from '../adapters/http.js'
import { tokenResponse } from '../adapters/token-response.js'
import type { Client } from '../core/clients.js'
import type { DpopGrant } from '../core/dpop-grant.js'
import { InvalidGrant, OAuthError, UnsupportedGrantType } from '../core/errors.js'
import { type RefreshDeps, refresh } from '../core/refresh.js'
import { findClient } from '../core/service.js'

export interface TokenDeps extends RefreshDeps {
  readonly clients: ReadonlyMap<string, Client>
  readonly dpop: DpopGrant
}

/**
 * `POST /token`: RFC 6749 §6 refresh. Cookie-mode clients send the token as
 * their cookie. A `DPoP` proof is checked before the refresh token is read, so
 * a refused proof or a nonce challenge leaves the refresh token unconsumed.
 */
export const tokenRoute: Route<TokenDeps> = async (request, deps) => {
  if (param(request, 'grant_type') !== 'refresh_token') throw new UnsupportedGrantType()
  const client = findClient(deps.clients, param(request, 'client_id'))
  if (client.cookieMode) assertOrigin(request, client)
  const proof = await deps.dpop.check(client, {
    proof: request.headers.dpop,
    method: request.method,
    uris: [`${deps.settings.issuer}/token`, request.url],
  })
  // Before anything commits: nothing may fail once the session is written.
  const nonce = await deps.dpop.nonceHeader(client, proof)
  try {
    const result = await refresh(deps, {
      refreshToken: presentedToken(request, client),
      client,
      scope: optionalParam(request, 'scope'),
      origin: requestOrigin(request),
      proof,
    })
    return tokenResponse(result, deps.clock.now(), nonce)
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
  if (!token) throw new InvalidGrant('cookie_missing')
  return token
}

function withCookie(error: OAuthError, cookie: string): OAuthError {
  Object.assign(error.headers, { 'Set-Cookie': cookie })
  return error
}
