import type { Clock } from './clock.js'
import { InvalidRequest } from './errors.js'
import {
  hashPassword,
  MAX_PASSWORD_BYTES,
  MAX_USERNAME_CHARS,
  normalizeUsername,
  type ScryptParams,
} from './passwords.js'
import type { Session, SessionStore, User, UserStore } from './ports.js'
import { newUserId } from './refresh-token.js'
import {
  type RequestOrigin,
  type RevocationReason,
  securityEvent,
  sessionRevoked,
} from './security-events.js'

export class UserExists extends Error {}
export class UnknownUser extends Error {}

// The same bound login uses to refuse a username before any read.
const USERNAME = new RegExp(`^[\\p{L}\\p{N}._@+-]{1,${MAX_USERNAME_CHARS}}$`, 'u')
const ROLE = /^[A-Za-z0-9:._-]{1,64}$/

/** Creates a user with a fresh immutable `sub`. Throws `UserExists` if the username is taken. */
export async function addUser(
  users: UserStore,
  clock: Clock,
  input: { username: string; password: string; roles: readonly string[]; params?: ScryptParams },
): Promise<User> {
  const username = normalizeUsername(input.username)
  if (!USERNAME.test(username))
    throw new InvalidRequest(
      `username must be 1-${MAX_USERNAME_CHARS} letters, digits or . _ @ + -`,
    )
  const bytes = Buffer.byteLength(input.password, 'utf8')
  if (bytes < 8 || bytes > MAX_PASSWORD_BYTES) {
    throw new InvalidRequest(`password must be 8 to ${MAX_PASSWORD_BYTES} bytes`)
  }
  const badRole = input.roles.find((role) => !ROLE.test(role))
  if (badRole !== undefined)
    throw new InvalidRequest('roles must be 1-64 characters of A-Z a-z 0-9 : . _ -')
  const user: User = {
    sub: newUserId(),
    username,
    passwordHash: await hashPassword(input.password, input.params),
    roles: [...new Set(input.roles)],
    status: 'active',
    createdAt: clock.now(),
  }
  if (!(await users.createUser(user))) throw new UserExists(`user ${username} exists`)
  return user
}

/**
 * The `sessionsValidAfter` with which a disable or logout everywhere at `now`
 * voids every session created up to and including `now`, the same millisecond
 * too. A login whose session is written after it starts at this instant
 * instead (`startAfterLogout`), so it survives.
 */
export const voidSessionsUpTo = (now: number): number => now + 1

/**
 * True when a disable or logout everywhere voided the session: it was created
 * before the user's `sessionsValidAfter`. The one rule refresh, the strict
 * authorizer and `GET /sessions` apply (and createSession's condition).
 */
export function voidedByUser(session: Session, user: User): boolean {
  return user.sessionsValidAfter !== undefined && session.createdAt < user.sessionsValidAfter
}

/**
 * When a login's session was refused by its user's guard alone, the instant
 * at which it may start instead, or undefined when the refusal stands.
 *
 * A logout everywhere (or anything else that sets `sessionsValidAfter`) that
 * commits between the login's clock reading and its write voids the new
 * session by its `createdAt`. But the session is written after the logout, so
 * it is not one the logout meant to end: it starts at `sessionsValidAfter`
 * instead, which the logout's own instant rule (`voidSessionsUpTo`) lets live.
 * Only if the user is still active with the password the login checked: a
 * disable or a password change is a refusal.
 */
export function startAfterLogout(
  session: Session,
  guard: { readonly passwordHash: string },
  user: User | undefined,
): number | undefined {
  if (user?.status !== 'active' || user.passwordHash !== guard.passwordHash) return undefined
  if (!voidedByUser(session, user)) return undefined
  return user.sessionsValidAfter
}

/**
 * Disables a user and ends all their sessions at once: refresh checks
 * `sessionsValidAfter`, and each session is also marked revoked. Events:
 * `user.disabled`, then `session.revoked` for each session it ends.
 */
export async function disableUser(
  stores: { readonly users: UserStore; readonly sessions: SessionStore },
  clock: Clock,
  username: string,
): Promise<number> {
  const user = await requireUser(stores.users, username)
  const now = clock.now()
  await stores.users.updateUser(
    user.sub,
    { status: 'disabled', sessionsValidAfter: voidSessionsUpTo(now) },
    [securityEvent('user.disabled', now, { subject: user.sub })],
  )
  return endSessions(stores.sessions, user.sub, now, 'user_disabled')
}

/** Enables a disabled user, with `user.enabled`; an active user is left as it is. */
export async function enableUser(users: UserStore, clock: Clock, username: string): Promise<void> {
  const user = await requireUser(users, username)
  if (user.status === 'active') return
  await users.updateUser(user.sub, { status: 'active' }, [
    securityEvent('user.enabled', clock.now(), { subject: user.sub }),
  ])
}

/**
 * Marks every active session of the user revoked, each with its
 * `session.revoked` (`origin`: the request that asked, where there is one);
 * returns how many this call ended.
 */
export async function endSessions(
  sessions: SessionStore,
  sub: string,
  at: number,
  reason: RevocationReason,
  origin?: RequestOrigin,
): Promise<number> {
  const active = (await sessions.listSessions(sub)).filter((session) => session.status === 'active')
  const ended = await Promise.all(
    active.map((session) =>
      sessions.revokeSession(session.sid, reason, at, [
        sessionRevoked(session, reason, at, origin),
      ]),
    ),
  )
  return ended.filter(Boolean).length
}

async function requireUser(users: UserStore, username: string): Promise<User> {
  const user = await users.findUserByUsername(normalizeUsername(username))
  if (!user) throw new UnknownUser(`no user ${normalizeUsername(username)}`)
  return user
}
