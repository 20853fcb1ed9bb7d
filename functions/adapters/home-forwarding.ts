import { homeOf, parseRefreshToken } from '../core/refresh-token.js'
import type { HomeAnswer, HomeRegion, Regions } from '../core/regions.js'
import type { HttpRequest } from './http.js'

/**
 * The status of a forwarded request's answer that says "this session's item is homed
 * elsewhere" (`failover: 'adopt'`, with HOME_MOVED_HEADER naming where). Only ever an
 * answer to a forward, which the forwarding region acts on and never returns: no client
 * sees it.
 */
export const HOME_MOVED_STATUS = 421
export const HOME_MOVED_HEADER = 'x-home-region'

/** The region a home's moved answer names; undefined for any other answer. */
export function movedTo(answer: HomeAnswer): string | undefined {
  if (answer.statusCode !== HOME_MOVED_STATUS) return undefined
  const found = Object.entries(answer.headers ?? {}).find(
    ([name]) => name.toLowerCase() === HOME_MOVED_HEADER,
  )
  return found?.[1]
}

/** Where a request that names a session by its refresh token is decided. */
export interface HomeRouting {
  /** With several regions: this one and the others. */
  readonly regions?: Regions
  /** The way to the other regions' copy of this function. */
  readonly homeRegion?: HomeRegion
}

/**
 * The region a request's token sends it to first, before anything is read: undefined to
 * decide it here (one region, a forwarded request, a token that is not well formed, a
 * token homed here). The token route follows it with the item's home (token/route.ts).
 */
export function homeToForwardTo(
  request: HttpRequest,
  routing: HomeRouting,
  token: string | undefined,
): string | undefined {
  const { regions, homeRegion } = routing
  if (!regions || !homeRegion || request.forwardedFrom !== undefined) return undefined
  const locator = token === undefined ? undefined : parseRefreshToken(token)
  if (!locator) return undefined
  const home = homeOf(locator, regions.all)
  return home === regions.here ? undefined : home
}

/**
 * With several regions, a request about a session is decided in its home
 * (docs/multi-region.md "Each session has a home"): one whose refresh token is homed
 * elsewhere is handed there as it came. Undefined: decide it here (one region, a
 * request another region forwarded, whatever its token says, so never a second
 * forward; a token that is not well formed, left to the refusal here; a token homed
 * here). `unreachable`: the home could not be asked (`unlisted`: no longer in
 * `regions`); nothing was decided.
 */
export async function forwardToHome(
  request: HttpRequest,
  routing: HomeRouting,
  token: string | undefined,
): Promise<
  | { readonly answer: HomeAnswer; readonly home: string }
  | { readonly unreachable: string }
  | undefined
> {
  const { regions, homeRegion } = routing
  if (!regions || !homeRegion || request.forwardedFrom !== undefined) return undefined
  const locator = token === undefined ? undefined : parseRefreshToken(token)
  if (!locator) return undefined
  const home = homeOf(locator, regions.all)
  if (home === undefined || home === regions.here) return undefined
  if (!regions.all.includes(home)) return { unreachable: 'unlisted' }
  const answer = await homeRegion.forward(home, request.event)
  return answer === 'unreachable' ? { unreachable: home } : { answer, home }
}
