import { forwardToHome } from '../adapters/home-forwarding.js'
import {
  assertOrigin,
  clearedRefreshCookie,
  type HttpRequest,
  type HttpResponse,
  optionalParam,
  param,
  type Route,
  refreshCookieName,
  requestOrigin,
} from '../adapters/http.js'
import { tokenResponse } from '../adapters/token-response.js'
import type { Client } from '../core/clients.js'
import type { DpopGrant } from '../core/dpop-grant.js'
import { HomeUnreachable, InvalidGrant, OAuthError, UnsupportedGrantType } from '../core/errors.js'
import { type RefreshDeps, refresh } from '../core/refresh.js'
import type { HomeRegion } from '../core/regions.js'
import { findClient } from '../core/service.js'

export interface TokenDeps extends RefreshDeps {
  readonly clients: ReadonlyMap<string, Client>
  readonly dpop: DpopGrant
  /** With several regions (`settings.regions`): the way to a session's home region. */
  readonly homeRegion?: HomeRegion
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
  try {
    // Before the proof is checked: its single use is the home's to record.
    const forwarded = await forwardHome(request, deps, client)
    if (forwarded) return forwarded
  } catch (error) {
    throw clearedIfGrant(error, client)
  }
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
    throw clearedIfGrant(error, client)
  }
}

/** A dead session's cookie is cleared, so the browser stops sending it. */
function clearedIfGrant(error: unknown, client: Client): unknown {
  if (client.cookieMode && error instanceof OAuthError && error.error === 'invalid_grant') {
    return withCookie(error, clearedRefreshCookie(client))
  }
  return error
}

/**
 * With several regions, a refresh is decided in its session's home: the home's answer
 * is the answer (adapters/home-forwarding.ts).
 */
async function forwardHome(
  request: HttpRequest,
  deps: TokenDeps,
  client: Client,
): Promise<HttpResponse | undefined> {
  const presented = client.cookieMode
    ? request.cookies.get(refreshCookieName(client))
    : request.params.refresh_token
  const forwarded = await forwardToHome(
    request,
    { regions: deps.settings.regions, homeRegion: deps.homeRegion },
    presented,
  )
  if (!forwarded) return undefined
  if ('unreachable' in forwarded) throw new HomeUnreachable(forwarded.unreachable)
  deps.telemetry.emit('refresh_forwarded', { client_id: client.clientId, home: forwarded.home })
  return { status: forwarded.answer.statusCode, verbatim: forwarded.answer }
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
