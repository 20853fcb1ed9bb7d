import type { Clock } from './clock.js'
import { InvalidRequest } from './errors.js'
import { assertNewPassword, assertNotBreached, type PasswordPolicy } from './password-policy.js'
import {
  couldBeUsername,
  hashPassword,
  MAX_USERNAME_CHARS,
  normalizeUsername,
  type ScryptParams,
  verifyPassword,
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

const ROLE = /^[A-Za-z0-9:._-]{1,64}$/

/**
 * Creates a user with a fresh immutable `sub`; the password meets `policy`
 * (core/password-policy.ts). Throws `UserExists` if the username is taken.
 */
export async function addUser(
  users: UserStore,
  clock: Clock,
  input: { username: string; password: string; roles: readonly string[]; params?: ScryptParams },
  policy: PasswordPolicy,
): Promise<User> {
  const username = normalizeUsername(input.username)
  // The rule login applies before any read or throttle record.
  if (!couldBeUsername(username))
    throw new InvalidRequest(
      `username must be 1-${MAX_USERNAME_CHARS} letters, digits or . _ @ + -`,
    )
  assertNewPassword(policy, input.password)
  const badRole = input.roles.find((role) => !ROLE.test(role))
  if (badRole !== undefined)
    throw new InvalidRequest('roles must be 1-64 characters of A-Z a-z 0-9 : . _ -')
  await assertNotBreached(policy, input.password)
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
 * True when a disable, logout everywhere or password change voided the
 * session: it was created before the user's `sessionsValidAfter`, and it is
 * not the session the last password change kept (`keptSession`). The one rule
 * refresh, the strict authorizer and `GET /sessions` apply (and the
 * conditions of createSession and changePassword). It reads the user item
 * alone, besides the session's immutable id and creation time, so a read that
 * sees the user before or after a change never sees half of it.
 */
export function voidedByUser(session: Session, user: User): boolean {
  if (user.sessionsValidAfter === undefined || session.createdAt >= user.sessionsValidAfter) {
    return false
  }
  return session.sid !== user.keptSession
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
 * Marks every active session of the user revoked, except `keep`, each with
 * its `session.revoked` (`origin`: the request that asked, where there is
 * one); returns how many this call ended.
 */
export async function endSessions(
  sessions: Pick<SessionStore, 'listSessions' | 'revokeSession'>,
  sub: string,
  at: number,
  reason: RevocationReason,
  origin?: RequestOrigin,
  keep?: string,
): Promise<number> {
  const active = (await sessions.listSessions(sub)).filter(
    (session) => session.status === 'active' && session.sid !== keep,
  )
  const ended = await Promise.all(
    active.map((session) =>
      sessions.revokeSession(session.sid, reason, at, [
        sessionRevoked(session, reason, at, origin),
      ]),
    ),
  )
  return ended.filter(Boolean).length
}

/** The operator's `users set-password` lost a race: the user changed between its read and its write. */
export class UserChanged extends Error {}

/**
 * The operator's password reset (`users set-password`): the password policy
 * of user creation and of the password change (not the current password
 * either: one scrypt check against the stored hash), the new hash written
 * only over the hash that was read, and every session of the user ended at
 * once, in the same write (`sessionsValidAfter`, no session kept) as its
 * `password.changed`; each is then marked revoked, with its
 * `session.revoked`. A disabled user stays disabled. Returns how many
 * sessions were active.
 */
export async function setPassword(
  stores: { readonly users: UserStore; readonly sessions: SessionStore },
  clock: Clock,
  input: { username: string; password: string; params?: ScryptParams },
  policy: PasswordPolicy,
): Promise<number> {
  assertNewPassword(policy, input.password)
  const user = await requireUser(stores.users, input.username)
  if (await verifyPassword(input.password, user.passwordHash)) {
    throw new InvalidRequest('password must differ from the current password')
  }
  await assertNotBreached(policy, input.password)
  const newHash = await hashPassword(input.password, input.params)
  const now = clock.now()
  const result = await stores.users.changePassword(
    {
      sub: user.sub,
      expectHash: user.passwordHash,
      newHash,
      sessionsValidAfter: voidSessionsUpTo(now),
    },
    [securityEvent('password.changed', now, { subject: user.sub })],
  )
  if (result === 'refused') {
    throw new UserChanged(
      `user ${user.username} changed meanwhile: nothing was written, run it again`,
    )
  }
  return endSessions(stores.sessions, user.sub, now, 'password_changed')
}

async function requireUser(users: UserStore, username: string): Promise<User> {
  const user = await users.findUserByUsername(normalizeUsername(username))
  if (!user) throw new UnknownUser(`no user ${normalizeUsername(username)}`)
  return user
}
