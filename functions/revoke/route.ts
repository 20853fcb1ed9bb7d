import {
  forwardToHome,
  HOME_MOVED_HEADER,
  HOME_MOVED_STATUS,
  type HomeRouting,
  movedTo,
} from '../adapters/home-forwarding.js'
import {
  assertOrigin,
  clearedRefreshCookie,
  type HttpRequest,
  type HttpResponse,
  param,
  type Route,
  refreshCookieName,
  requestOrigin,
} from '../adapters/http.js'
import type { Client } from '../core/clients.js'
import { HomeMoved } from '../core/regions.js'
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
    const moved = movedTo(forwarded.answer)
    // The token's home says the session moved (adopted): decided here if here, else there.
    if (moved === undefined) {
      return { status: forwarded.answer.statusCode, verbatim: forwarded.answer }
    }
    return revokeHere(request, deps, client, moved === deps.regions?.here)
  }
  // A home that cannot be reached rotates nothing meanwhile: revoked here, the session ends
  // everywhere once the home is back and has replicated (docs/multi-region.md).
  return revokeHere(request, deps, client, forwarded !== undefined)
}

/**
 * The revocation, in this region. Under `failover: 'adopt'` a session whose item is homed
 * elsewhere (adopted) goes to that home: a forwarded request is answered that it moved
 * (HOME_MOVED_STATUS), the others are forwarded there once, and written here when that
 * home cannot be reached or answers that it moved again. `anyHome`: write it here anyway.
 */
async function revokeHere(
  request: HttpRequest,
  deps: RevokeDeps,
  client: Client,
  anyHome: boolean,
): Promise<HttpResponse> {
  const origin = requestOrigin(request)
  const token = client.cookieMode
    ? request.cookies.get(refreshCookieName(client))
    : // `token_type_hint` is optional and may be ignored (RFC 7009 §2.1): only refresh tokens revoke.
      param(request, 'token')
  const done: HttpResponse = client.cookieMode
    ? { status: 200, body: {}, cookies: [clearedRefreshCookie(client)] }
    : { status: 200, body: {} }
  if (!token) return done
  try {
    await revoke(deps, { token, client, origin, anyHome })
    return done
  } catch (error) {
    if (!(error instanceof HomeMoved)) throw error
    if (request.forwardedFrom !== undefined) {
      return { status: HOME_MOVED_STATUS, headers: { [HOME_MOVED_HEADER]: error.home } }
    }
    const answer = deps.homeRegion && (await deps.homeRegion.forward(error.home, request.event))
    if (answer && answer !== 'unreachable' && movedTo(answer) === undefined) {
      return { status: answer.statusCode, verbatim: answer }
    }
    await revoke(deps, { token, client, origin, anyHome: true })
    return done
  }
}
