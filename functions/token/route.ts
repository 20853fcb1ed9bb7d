import {
  HOME_MOVED_HEADER,
  HOME_MOVED_STATUS,
  homeToForwardTo,
  movedTo,
} from '../adapters/home-forwarding.js'
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
import {
  HomeUnreachable,
  InvalidGrant,
  OAuthError,
  TemporarilyUnavailable,
  UnsupportedGrantType,
} from '../core/errors.js'
import { type RefreshDeps, refresh } from '../core/refresh.js'
import { HomeMoved, type HomeRegion, type LostRegions } from '../core/regions.js'
import { findClient } from '../core/service.js'

export interface TokenDeps extends RefreshDeps {
  readonly clients: ReadonlyMap<string, Client>
  readonly dpop: DpopGrant
  /** With several regions (`settings.regions`): the way to a session's home region. */
  readonly homeRegion?: HomeRegion
  /** `failover: 'adopt'`: the operators' switch, cached per container. */
  readonly lostRegions?: LostRegions
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
    const home = tokenHome(request, deps, client)
    if (home === undefined) return await decideHere(request, deps, client, undefined)
    return await atHome(request, deps, client, home, MAX_FORWARDS)
  } catch (error) {
    throw clearedIfGrant(error, client)
  }
}

/** A refresh is forwarded at most twice: to its token's home, then to the item's (moved). */
const MAX_FORWARDS = 2

/** Decides the refresh in this region; a session whose item is homed elsewhere goes there. */
async function decideHere(
  request: HttpRequest,
  deps: TokenDeps,
  client: Client,
  adopt: { readonly from: string } | undefined,
  forwardsLeft = MAX_FORWARDS,
): Promise<HttpResponse> {
  try {
    return await refreshHere(request, deps, client, adopt)
  } catch (error) {
    if (!(error instanceof HomeMoved)) throw error
    // A forwarded request is never forwarded again: the forwarding region is told where.
    if (request.forwardedFrom !== undefined) {
      return { status: HOME_MOVED_STATUS, headers: { [HOME_MOVED_HEADER]: error.home } }
    }
    if (forwardsLeft === 0) throw new TemporarilyUnavailable('the session’s home kept moving')
    return atHome(request, deps, client, error.home, forwardsLeft)
  }
}

/**
 * Hands the request to `home` and returns its answer. A home that says the session moved
 * (an adoption the forwarding region's token did not know of) is followed once; a home
 * that does not answer is `FAILOVER`'s case.
 */
async function atHome(
  request: HttpRequest,
  deps: TokenDeps,
  client: Client,
  home: string,
  forwardsLeft: number,
): Promise<HttpResponse> {
  const { regions } = deps.settings
  if (!regions || !deps.homeRegion) return decideHere(request, deps, client, undefined, 0)
  if (!regions.all.includes(home)) return failover(request, deps, client, home, 'unlisted')
  const answer = await deps.homeRegion.forward(home, request.event)
  if (answer === 'unreachable') return failover(request, deps, client, home, home)
  const moved = movedTo(answer)
  if (moved !== undefined) {
    if (moved === regions.here) return decideHere(request, deps, client, undefined, 0)
    if (forwardsLeft <= 1) throw new TemporarilyUnavailable('the session’s home kept moving')
    return atHome(request, deps, client, moved, forwardsLeft - 1)
  }
  deps.telemetry.emit('refresh_forwarded', { client_id: client.clientId, home })
  return { status: answer.statusCode, verbatim: answer }
}

/**
 * The home did not answer (docs/multi-region.md "When a region is lost"). `relogin`: the
 * client logs in again here. `adopt`: this region takes the session over if the home is
 * declared lost (the operators' switch, read at most every REGION_SWITCH_CACHE_MS); if not,
 * 503 and a retry: a blip must not fork sessions. Nothing is written either way but the
 * adoption itself.
 */
async function failover(
  request: HttpRequest,
  deps: TokenDeps,
  client: Client,
  home: string,
  unreachable: string,
): Promise<HttpResponse> {
  const { regions } = deps.settings
  if (regions?.failover !== 'adopt' || !deps.lostRegions) throw new HomeUnreachable(unreachable)
  if (!(await deps.lostRegions.isLost(home))) {
    throw new TemporarilyUnavailable(
      `home region ${home} did not answer and is not declared lost`,
      {
        retryAfterSeconds: HOME_RETRY_AFTER_SECONDS,
      },
    )
  }
  return decideHere(request, deps, client, { from: home }, 0)
}

/** The `Retry-After` of a refresh whose home did not answer and is not declared lost. */
export const HOME_RETRY_AFTER_SECONDS = 5

/** The refresh, decided in this region (with `adopt`, possibly a takeover). */
async function refreshHere(
  request: HttpRequest,
  deps: TokenDeps,
  client: Client,
  adopt: { readonly from: string } | undefined,
): Promise<HttpResponse> {
  const proof = await deps.dpop.check(client, {
    proof: request.headers.dpop,
    method: request.method,
    uris: [`${deps.settings.issuer}/token`, request.url],
  })
  // Before anything commits: nothing may fail once the session is written.
  const nonce = await deps.dpop.nonceHeader(client, proof)
  const result = await refresh(deps, {
    refreshToken: presentedToken(request, client),
    client,
    scope: optionalParam(request, 'scope'),
    origin: requestOrigin(request),
    proof,
    ...(adopt && { adopt }),
  })
  return tokenResponse(result, deps.clock.now(), nonce)
}

/** A dead session's cookie is cleared, so the browser stops sending it. */
function clearedIfGrant(error: unknown, client: Client): unknown {
  if (client.cookieMode && error instanceof OAuthError && error.error === 'invalid_grant') {
    return withCookie(error, clearedRefreshCookie(client))
  }
  return error
}

/**
 * With several regions, the home a refresh goes to first: its token's (adapters/home-forwarding.ts).
 * Undefined: decide it here.
 */
function tokenHome(request: HttpRequest, deps: TokenDeps, client: Client): string | undefined {
  const presented = client.cookieMode
    ? request.cookies.get(refreshCookieName(client))
    : request.params.refresh_token
  return homeToForwardTo(
    request,
    { regions: deps.settings.regions, homeRegion: deps.homeRegion },
    presented,
  )
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
