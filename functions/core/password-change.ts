import type { Clock } from './clock.js'
import { InvalidGrant, InvalidRequest, InvalidToken, TooManyRequests } from './errors.js'
import { assertNewPassword, assertNotBreached, type PasswordPolicy } from './password-policy.js'
import { checkPassword, refundAttempt, reportFailedCheck, reserveAttempt } from './password-turn.js'
import { hashPassword, MAX_PASSWORD_BYTES, type ScryptParams } from './passwords.js'
import type { EventOutbox, LoginAttempts, SessionStore, Telemetry, UserStore } from './ports.js'
import { type RequestOrigin, securityEvent } from './security-events.js'
import { type Caller, liveCaller, sessionIsLive } from './sessions.js'
import type { BackoffPolicy } from './throttle.js'
import { endSessions, voidSessionsUpTo } from './users.js'

/** What a password change works with. */
export interface PasswordChangeDeps {
  readonly sessions: SessionStore
  readonly users: UserStore
  readonly loginAttempts: LoginAttempts
  readonly clock: Clock
  readonly telemetry: Telemetry
  /** For the `login.failed` and `login.throttled` of a refused check, which write nothing else. */
  readonly outbox: EventOutbox
  /** The login back-off: a wrong current password counts as a failed login. */
  readonly loginBackoff: BackoffPolicy
  /** The rules a new password meets (core/password-policy.ts). */
  readonly passwordPolicy: PasswordPolicy
  /** The new hash's scrypt parameters. @default OWASP_SCRYPT */
  readonly scrypt?: ScryptParams
}

export interface PasswordChangeInput {
  readonly currentPassword: string
  readonly newPassword: string
}

/**
 * `POST /me/password` (docs/design.md "Password change"). The calling session
 * must be live; the username's back-off decides, before any hashing, whether
 * the current password may be checked, and a wrong one counts as a failed
 * login. The new hash is written only over the hash that was checked, in one
 * conditional write of the user that also sets `sessionsValidAfter` (every
 * other session of the user is void from that commit on) and `keptSession`
 * (the calling one lives on). Each other session is then marked revoked, as
 * bookkeeping: the commit alone already ended them.
 */
export async function changePassword(
  deps: PasswordChangeDeps,
  caller: Caller & { readonly clientId: string },
  input: PasswordChangeInput,
  origin: RequestOrigin = {},
): Promise<void> {
  const { sessions, users, clock, telemetry, loginBackoff } = deps
  if (Buffer.byteLength(input.currentPassword, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new InvalidRequest(`current_password must not exceed ${MAX_PASSWORD_BYTES} bytes`)
  }
  // The rules that cost nothing, before any read, hashing or turn.
  assertNewPassword(deps.passwordPolicy, input.newPassword, {
    name: 'new_password',
    current: input.currentPassword,
  })

  const { session, user } = await liveCaller(sessions, clock, caller)
  const now = clock.now()
  const attempt = {
    username: user.username,
    now,
    fields: { client_id: caller.clientId, sid: caller.sid, reason: 'password_change' },
  }
  const event = (
    type: 'login.failed' | 'login.throttled' | 'password.changed',
    at: number,
    data: { reason?: 'wrong_password'; retry_after_seconds?: number } = {},
  ) =>
    securityEvent(type, at, {
      subject: user.sub,
      data: { sid: caller.sid, client_id: caller.clientId, ...data },
      origin,
    })
  const reservation = await reserveAttempt(deps, loginBackoff, attempt).catch(
    async (error: unknown) => {
      // A refusal changes nothing in the table: its event is written alone.
      if (error instanceof TooManyRequests) {
        const retryAfter = Number(error.headers['Retry-After'])
        await deps.outbox.appendEvent(
          event('login.throttled', now, { retry_after_seconds: retryAfter }),
        )
      }
      throw error
    },
  )
  if (!(await checkPassword(reservation, input.currentPassword, user.passwordHash))) {
    // The reservation counted this failure: its event is written alone.
    await deps.outbox.appendEvent(event('login.failed', now, { reason: 'wrong_password' }))
    reportFailedCheck(deps, reservation, 'wrong_current_password')
    throw new InvalidGrant('wrong_current_password')
  }
  // The range API only for a caller who knows the current password: one call, no hashing yet.
  await assertNotBreached(deps.passwordPolicy, input.newPassword, 'new_password').catch(
    async (error: unknown) => {
      // The right password was checked all the same: it clears the count.
      await refundAttempt(deps, reservation)
      throw error
    },
  )

  const newHash = await hashPassword(input.newPassword, deps.scrypt)
  const changedAt = clock.now()
  const sessionsValidAfter = voidSessionsUpTo(changedAt)
  const [result] = await Promise.all([
    users.changePassword(
      {
        sub: user.sub,
        expectHash: user.passwordHash,
        newHash,
        sessionsValidAfter,
        keep: { sid: session.sid, createdAt: session.createdAt },
      },
      [event('password.changed', changedAt)],
    ),
    // Best effort: a count left behind only means an earlier back-off; the change stands.
    refundAttempt(deps, reservation),
  ])
  if (result === 'refused') {
    // Another change, a disable or a logout everywhere won the race: the password checked
    // is no longer the current one, or the calling session no longer lives.
    const fresh = await sessions.loadSessionState(caller)
    if (!fresh.session || !sessionIsLive(fresh.session, fresh.user, clock.now())) {
      throw new InvalidToken('calling_session_ended')
    }
    throw new InvalidGrant('user_changed_during_password_change')
  }
  telemetry.emit('password_changed', { client_id: caller.clientId, sid: caller.sid })

  // Bookkeeping only, so a fault here still answers 204: the commit voided these sessions.
  const ended = await endSessions(
    sessions,
    user.sub,
    changedAt,
    'password_changed',
    origin,
    session.sid,
  ).catch(() => undefined)
  telemetry.emit('revoke', {
    reason: 'password_changed',
    ...(ended === undefined ? {} : { sessions: ended }),
  })
}
