import { TooManyRequests } from './errors.js'
import type { Events, FailedLogins, LoginAttempts } from './ports.js'
import { type BackoffPolicy, failureAt, loginTurn } from './throttle.js'

/**
 * The per-username back-off (core/throttle.ts) around one password check, the
 * same for login and for a password change (whose wrong current password
 * counts as a failed login): the turn is taken before any hashing, and the
 * outcome is counted after.
 */
export interface PasswordTurnDeps {
  readonly loginAttempts: LoginAttempts
  readonly events: Events
}

/** One password check for a username: who asks, and when. */
export interface PasswordAttempt {
  readonly username: string
  readonly now: number
  /** Non-secret fields for the events (`client_id`, ...). */
  readonly fields: Readonly<Record<string, string>>
}

/**
 * A username with recent failures gets one password check per back-off
 * period (core/throttle.ts `loginTurn`). During the back-off the answer is
 * 429, before any hashing. Once it has passed, the attempt takes the turn by
 * counting itself as the next failure up front and returns what it wrote; a
 * success clears it again (`clearTurn`). Returns undefined for a username
 * with no recent failures.
 */
export async function takeTurn(
  deps: PasswordTurnDeps,
  backoff: BackoffPolicy,
  attempt: PasswordAttempt,
  stored: FailedLogins | undefined,
): Promise<FailedLogins | undefined> {
  const turn = loginTurn(backoff, stored, attempt.now)
  if (turn.kind === 'free') return undefined
  if (turn.kind === 'wait') throw throttled(deps, attempt, turn.seconds, 'in back-off')
  const { loginAttempts } = deps
  if (
    await loginAttempts.claimLoginAttempt(attempt.username, turn.seen, turn.next, turn.expiresAt)
  ) {
    return turn.next
  }
  throw throttled(deps, attempt, turn.lostWaitSeconds, 'turn taken')
}

/** Counts a failed check (a claimed turn was counted when it was taken) and reports it. */
export async function countFailure(
  deps: PasswordTurnDeps,
  backoff: BackoffPolicy,
  attempt: PasswordAttempt,
  claimed: FailedLogins | undefined,
): Promise<void> {
  if (!claimed)
    await deps.loginAttempts.recordLoginFailure(attempt.username, failureAt(backoff, attempt.now))
  deps.events.emit('login_failed', attempt.fields)
}

/** The right password resets the count, if a turn was taken (and nothing changed since). */
export const clearTurn = (
  deps: PasswordTurnDeps,
  attempt: PasswordAttempt,
  claimed: FailedLogins | undefined,
): Promise<void> =>
  claimed ? deps.loginAttempts.clearLoginFailures(attempt.username, claimed) : Promise.resolve()

function throttled(
  deps: PasswordTurnDeps,
  attempt: PasswordAttempt,
  seconds: number,
  why: string,
): TooManyRequests {
  deps.events.emit('login_throttled', attempt.fields)
  return new TooManyRequests(seconds, why)
}
