import { TooManyRequests } from './errors.js'
import type { FailedLogins, LoginAttempts, Telemetry } from './ports.js'
import type { ThrottleRefusal } from './refusals.js'
import { type BackoffPolicy, freeTurn, loginTurn } from './throttle.js'

/**
 * The per-username back-off (core/throttle.ts) around one password check, the
 * same for login and for a password change (whose wrong current password
 * counts as a failed login). Every attempt takes a turn before any hashing and
 * counts itself as a failure up front, so that concurrent guesses gain nothing;
 * a success refunds its own count (`refundAttempt`). A login whose DPoP proof is refused
 * answers before it takes a turn (core/login.ts), so it counts nothing.
 */
export interface PasswordTurnDeps {
  readonly loginAttempts: LoginAttempts
  readonly telemetry: Telemetry
}

/** One password check for a username: who asks, and when. */
export interface PasswordAttempt {
  readonly username: string
  readonly now: number
  /** Non-secret fields for the events (`client_id`, ...). */
  readonly fields: Readonly<Record<string, string>>
}

/**
 * Takes this attempt's turn: a free turn first (one atomic conditional count);
 * if none is left, one claim per back-off period. During the back-off, or when
 * another attempt took the turn, it throws 429 before any hashing. Returns the
 * record as it wrote it, which `refundAttempt` takes after a success.
 */
export async function reserveAttempt(
  deps: PasswordTurnDeps,
  backoff: BackoffPolicy,
  attempt: PasswordAttempt,
): Promise<FailedLogins> {
  const { username, now } = attempt
  const count = await deps.loginAttempts.countLoginAttempt(username, freeTurn(backoff, now))
  if (count.counted) return count.state
  const turn = loginTurn(backoff, count.state, now)
  if (turn.kind === 'wait') throw throttled(deps, attempt, turn.seconds, 'in_backoff')
  if (await deps.loginAttempts.claimLoginAttempt(username, turn.seen, turn.next, turn.expiresAt)) {
    return turn.next
  }
  throw throttled(deps, attempt, turn.lostWaitSeconds, 'attempt_taken')
}

/** Reports a failed check: the turn already counted it when it was taken. */
export function reportFailedCheck(deps: PasswordTurnDeps, attempt: PasswordAttempt): void {
  deps.telemetry.emit('login_failed', attempt.fields)
}

/**
 * The right password clears the count: the one thing that does. Best-effort:
 * if it fails, the count errs on the safe side (this success stays counted),
 * and the caller's success is not lost for it.
 */
export const refundAttempt = (
  deps: PasswordTurnDeps,
  attempt: PasswordAttempt,
  turn: FailedLogins,
): Promise<void> =>
  deps.loginAttempts.clearLoginFailures(attempt.username, turn).catch(() => undefined)

function throttled(
  deps: PasswordTurnDeps,
  attempt: PasswordAttempt,
  seconds: number,
  code: ThrottleRefusal,
): TooManyRequests {
  deps.telemetry.emit('login_throttled', attempt.fields)
  return new TooManyRequests(seconds, code)
}
