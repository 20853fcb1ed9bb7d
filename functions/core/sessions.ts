import type { Clock } from './clock.js'
import { NotFound } from './errors.js'
import type { Events, Session, SessionStore, User, UserStore } from './ports.js'
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
 * The caller's live sessions, newest first, the current one marked. The user
 * is read alongside, so that sessions a logout everywhere voided but has not
 * (yet) marked revoked are left out too.
 */
export async function listSessions(
  sessions: SessionStore,
  clock: Clock,
  caller: Caller,
): Promise<SessionSummary[]> {
  const [listed, { user }] = await Promise.all([
    sessions.listSessions(caller.sub),
    sessions.loadSessionState({ sub: caller.sub, sid: caller.sid }),
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
 * Ends one of the caller's sessions. Another user's session, and a sid that
 * names nothing, get the same `NotFound`, so the answer reveals nothing about
 * other users. Ending an already ended session of the caller's succeeds.
 */
export async function endSession(
  deps: {
    readonly sessions: SessionStore
    readonly clock: Clock
    readonly events: Events
  },
  caller: Caller,
  sid: string,
): Promise<void> {
  if (!SESSION_ID.test(sid)) throw new NotFound('no such session')
  const session = await deps.sessions.getSession(sid)
  if (!session || session.sub !== caller.sub) throw new NotFound('no such session')
  if (session.status !== 'active') return
  const at = deps.clock.now()
  const revoked = sessionRevoked(session, 'ended_by_user', at, caller.origin)
  if (await deps.sessions.revokeSession(sid, 'ended_by_user', at, [revoked])) {
    deps.events.emit('revoke', { client_id: session.clientId, reason: 'ended_by_user' })
  }
}

/**
 * Logout everywhere: voids every session of the caller's that exists now
 * (`sessionsValidAfter`, which refresh and the strict authorizer check), with
 * `sessions.ended_all`, then marks each one revoked, each with its
 * `session.revoked`. Returns how many were active.
 */
export async function endAllSessions(
  deps: {
    readonly users: UserStore
    readonly sessions: SessionStore
    readonly clock: Clock
    readonly events: Events
  },
  caller: Caller,
): Promise<number> {
  const now = deps.clock.now()
  const endedAll = securityEvent('sessions.ended_all', now, {
    subject: caller.sub,
    data: {
      sid: caller.sid,
      ...(caller.clientId ? { client_id: caller.clientId } : {}),
      reason: 'logout_everywhere',
    },
    ...(caller.origin ? { origin: caller.origin } : {}),
  })
  await deps.users.updateUser(caller.sub, { sessionsValidAfter: voidSessionsUpTo(now) }, [endedAll])
  const ended = await endSessions(
    deps.sessions,
    caller.sub,
    now,
    'logout_everywhere',
    caller.origin,
  )
  deps.events.emit('revoke', { reason: 'logout_everywhere', sessions: ended })
  return ended
}
