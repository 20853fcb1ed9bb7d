import type { HomeRouting } from '../adapters/home-forwarding.js'
import { type HttpRequest, type HttpResponse, type Route, requestOrigin } from '../adapters/http.js'
import { callerClaims } from '../authorizer/context.js'
import type { Clock } from '../core/clock.js'
import { NotFound } from '../core/errors.js'
import type { SessionStore, Telemetry, UserStore } from '../core/ports.js'
import { endAllSessions, endSession, listSessions } from '../core/sessions.js'

export interface SessionsDeps extends HomeRouting {
  readonly sessions: SessionStore
  readonly users: UserStore
  readonly clock: Clock
  readonly telemetry: Telemetry
}

const iso = (epochMs: number) => new Date(epochMs).toISOString()

/**
 * The caller's sessions, behind the authorizer: `GET /sessions`,
 * `DELETE /sessions` (logout everywhere) and `DELETE /sessions/{sid}`, in one
 * function dispatching on the method and the path parameter.
 */
export const sessionsRoute: Route<SessionsDeps> = async (request, deps) => {
  const claims = callerClaims(request.authorizer)
  const caller = {
    sub: claims.sub,
    sid: claims.sid,
    clientId: claims.client_id,
    origin: requestOrigin(request),
  }
  const sid = request.pathParameters.sid
  if (request.method === 'GET' && sid === undefined) {
    const sessions = await listSessions(deps.sessions, deps.clock, caller)
    return {
      status: 200,
      body: {
        sessions: sessions.map((session) => ({
          sid: session.sid,
          client_id: session.clientId,
          created_at: iso(session.createdAt),
          last_used_at: iso(session.lastUsedAt),
          expires_at: iso(session.expiresAt),
          ...(session.userAgent === undefined ? {} : { user_agent: session.userAgent }),
          current: session.current,
        })),
      },
    }
  }
  if (request.method === 'DELETE' && sid !== undefined) {
    const forwarded = await forwardToSessionHome(request, deps, sid)
    if (forwarded) return forwarded
    await endSession(deps, caller, sid)
    return { status: 204 }
  }
  if (request.method === 'DELETE') {
    await endAllSessions(deps, caller)
    return { status: 204 }
  }
  throw new NotFound('no such route')
}

/**
 * With several regions, a session is ended in its home (docs/multi-region.md): its
 * rotations there write the same item, and a revocation written elsewhere would lose to
 * a later one (last writer wins). The home is read from this region's replica (a
 * session without one is the primary's); a session that is not there, or a home that
 * cannot be reached, is left to this region.
 */
async function forwardToSessionHome(
  request: HttpRequest,
  deps: SessionsDeps,
  sid: string,
): Promise<HttpResponse | undefined> {
  const { regions, homeRegion } = deps
  if (!regions || !homeRegion || request.forwardedFrom !== undefined) return undefined
  const session = await deps.sessions.getSession(sid)
  if (!session) return undefined
  const home = session.home ?? regions.all[0]
  if (home === undefined || home === regions.here || !regions.all.includes(home)) return undefined
  const answer = await homeRegion.forward(home, request.event)
  return answer === 'unreachable' ? undefined : { status: answer.statusCode, verbatim: answer }
}
