import type { Clock } from './clock.js'
import { InvalidToken, NotFound } from './errors.js'
import type { Session, SessionStore, Telemetry, User, UserStore } from './ports.js'
import { type RequestOrigin, securityEvent, sessionRevoked } from './security-events.js'
import { endSessions, voidedByUser, voidSessionsUpTo } from './users.js'

/** Who is calling a bearer route: the verified access token's subject and session. */
export interface Caller {
  readonly sub: string
  readonly sid: string
  /** The access token's `client_id`, for the security events. */
  readonly clientId?: string
  /** Where the request came from, for the security events. */
  readonly origin?: RequestOrigin
}

/** One of the caller's sessions as `GET /sessions` shows it: no token material. */
export interface SessionSummary {
  readonly sid: string
  readonly clientId: string
  readonly createdAt: number
  readonly lastUsedAt: number
  /** Epoch ms at which the session ends if nothing else ends it first (idle or absolute). */
  readonly expiresAt: number
  readonly userAgent?: string
  /** The session of the access token that made the request. */
  readonly current: boolean
}

/** Session ids are 22 base64url characters; anything else names no session. */
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/

/**
 * True while a session can still be used: active, neither idle nor past its
 * absolute lifetime, its user active, and not voided by a logout everywhere.
 * The same rule refresh applies, so the authorizer's strict mode and the
 * sessions API agree with it.
 */
export function sessionIsLive(session: Session, user: User | undefined, now: number): boolean {
  if (session.status !== 'active') return false
  if (now >= session.idleExpiresAt || now >= session.absoluteExpiresAt) return false
  if (user === undefined || user.sub !== session.sub || user.status !== 'active') return false
  return !voidedByUser(session, user)
}

/**
 * The calling session and its user, read strongly consistently, or
 * `InvalidToken` when that session is no longer live (`sessionIsLive`). The
 * guard of every route that acts on the caller's session: the sessions API
 * and the password change. An access token outlives its session by up to its
 * lifetime, and the plain authorizer (or the strict one within its cache)
 * still lets it through, so the route checks, in both authorizer modes.
 */
export async function liveCaller(
  sessions: Pick<SessionStore, 'loadSessionState'>,
  clock: Clock,
  caller: Pick<Caller, 'sub' | 'sid'>,
): Promise<{ readonly session: Session; readonly user: User }> {
  const { session, user } = await sessions.loadSessionState({ sub: caller.sub, sid: caller.sid })
  if (
    !session ||
    !user ||
    session.sub !== caller.sub ||
    !sessionIsLive(session, user, clock.now())
  ) {
    throw new InvalidToken('calling_session_ended')
  }
  return { session, user }
}

/**
 * The caller's live sessions, newest first, the current one marked; the
 * caller's own session must be live (`liveCaller`). The user is read
 * alongside, so that sessions a logout everywhere voided but has not (yet)
 * marked revoked are left out too.
 */
export async function listSessions(
  sessions: SessionStore,
  clock: Clock,
  caller: Caller,
): Promise<SessionSummary[]> {
  const [listed, { user }] = await Promise.all([
    sessions.listSessions(caller.sub),
    liveCaller(sessions, clock, caller),
  ])
  const now = clock.now()
  return listed
    .filter((session) => sessionIsLive(session, user, now))
    .map((session) => ({
      sid: session.sid,
      clientId: session.clientId,
      createdAt: session.createdAt,
      lastUsedAt: session.lastUsedAt,
      expiresAt: Math.min(session.idleExpiresAt, session.absoluteExpiresAt),
      ...(session.userAgent ? { userAgent: session.userAgent } : {}),
      current: session.sid === caller.sid,
    }))
}

/**
 * Ends one of the caller's sessions; the caller's own must be live
 * (`liveCaller`). Another user's session, and a sid that names nothing, get
 * the same `NotFound`, so the answer reveals nothing about other users.
 * Ending a session of the caller's that has already ended (revoked, voided,
 * expired) succeeds and writes nothing: an event only when something changed.
 */
export async function endSession(
  deps: {
    readonly sessions: SessionStore
    readonly clock: Clock
    readonly telemetry: Telemetry
  },
  caller: Caller,
  sid: string,
): Promise<void> {
  if (!SESSION_ID.test(sid)) throw new NotFound('no such session')
  const [session, { user }] = await Promise.all([
    deps.sessions.getSession(sid),
    liveCaller(deps.sessions, deps.clock, caller),
  ])
  if (!session || session.sub !== caller.sub) throw new NotFound('no such session')
  const at = deps.clock.now()
  if (!sessionIsLive(session, user, at)) return
  const revoked = sessionRevoked(session, 'ended_by_user', at, caller.origin)
  if (await deps.sessions.revokeSession(sid, 'ended_by_user', at, [revoked])) {
    deps.telemetry.emit('revoke', { client_id: session.clientId, reason: 'ended_by_user' })
  }
}

/**
 * Logout everywhere: voids every session of the caller's that exists now
 * (`sessionsValidAfter`, which refresh and the strict authorizer check), with
 * `sessions.ended_all`, then marks each one revoked, each with its
 * `session.revoked` (bookkeeping: if it fails, the cut stands and the answer
 * is still a success). Returns how many it marked.
 *
 * The caller's own session must be live (`liveCaller`), and the cut commits
 * only while it still is: of several logouts everywhere at once, one writes
 * its event and the others find the caller ended (`InvalidToken`). So the
 * event is written only when the cut ended something, at least the caller's
 * session, and an ended session's token cannot write one per request.
 */
export async function endAllSessions(
  deps: {
    readonly users: UserStore
    readonly sessions: SessionStore
    readonly clock: Clock
    readonly telemetry: Telemetry
  },
  caller: Caller,
): Promise<number> {
  const { session } = await liveCaller(deps.sessions, deps.clock, caller)
  const now = deps.clock.now()
  const validAfter = voidSessionsUpTo(now)
  const endedAll = securityEvent('sessions.ended_all', now, {
    subject: caller.sub,
    data: {
      sid: caller.sid,
      ...(caller.clientId ? { client_id: caller.clientId } : {}),
      reason: 'logout_everywhere',
    },
    ...(caller.origin ? { origin: caller.origin } : {}),
  })
  const cut = await deps.users.updateUser(
    caller.sub,
    {
      sessionsValidAfter: validAfter,
      whileLive: { sid: session.sid, createdAt: session.createdAt },
    },
    [endedAll],
  )
  if (!cut) {
    // Another cut (a concurrent logout everywhere, a disable, a password change elsewhere)
    // ended the calling session first; or this very one committed and its answer was lost,
    // which the user's `sessionsValidAfter` tells.
    const { user } = await deps.sessions.loadSessionState({ sub: caller.sub, sid: caller.sid })
    if (user?.sessionsValidAfter !== validAfter) {
      throw new InvalidToken('calling_session_ended')
    }
  }
  // Bookkeeping only, as after a password change: the cut already ended every session, the
  // caller's too, so a retry could not finish it (401). A fault here still answers 204.
  const ended = await endSessions(
    deps.sessions,
    caller.sub,
    now,
    'logout_everywhere',
    caller.origin,
  ).catch(() => undefined)
  deps.telemetry.emit('revoke', {
    reason: 'logout_everywhere',
    ...(ended === undefined ? {} : { sessions: ended }),
  })
  return ended ?? 0
}
