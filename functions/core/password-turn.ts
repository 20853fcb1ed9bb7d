import { TooManyRequests } from './errors.js'
import { verifyPassword } from './passwords.js'
import type { FailedLogins, LoginAttempts, Telemetry } from './ports.js'
import type { GrantRefusal, ThrottleRefusal } from './refusals.js'
import { type BackoffPolicy, freeTurn, loginTurn } from './throttle.js'

/**
 * The per-username back-off (core/throttle.ts) around one password check, the
 * same for login and for a password change (whose wrong current password
 * counts as a failed login). Every attempt reserves a turn before any hashing
 * and counts itself as a failure up front, so that concurrent guesses gain
 * nothing; a success refunds its own count (`refundAttempt`). A login whose
 * DPoP proof is refused answers before it reserves one (core/login.ts), so it
 * counts nothing.
 *
 * The order is held by the types, not by statement order: `checkPassword`
 * takes a `ReservedAttempt`, which only `reserveAttempt` makes.
 */
export interface PasswordTurnDeps {
  readonly loginAttempts: LoginAttempts
  readonly telemetry: Telemetry
}

/** One password check for a username: who asks, and when. */
export interface PasswordAttempt {
  readonly username: string
  readonly now: number
  /** Non-secret fields for the telemetry's log lines (`client_id`, ...). */
  readonly fields: Readonly<Record<string, string>>
}

/**
 * A turn held for one password check. The class is not exported and its
 * private field makes it nominal: no object literal passes for one, so a
 * password check that no reservation precedes does not compile.
 */
class Reservation {
  readonly attempt: PasswordAttempt
  /** The record as the reservation wrote it: what a refund takes back. */
  readonly record: FailedLogins
  #checked = false

  constructor(attempt: PasswordAttempt, record: FailedLogins) {
    this.attempt = attempt
    this.record = record
  }

  /**
   * One turn, one check: a second one would hash a password no turn counted.
   * Static, so that it reads the private field of the argument: anything but a
   * reservation throws a TypeError here.
   */
  static spend(reservation: Reservation): void {
    if (reservation.#checked) throw new Error('a reserved attempt allows one password check')
    reservation.#checked = true
  }
}

/** Proof that an attempt holds its turn: only `reserveAttempt` makes one. */
export type ReservedAttempt = Reservation

/**
 * Reserves this attempt's turn: a free turn first (one atomic conditional
 * count); if none is left, one claim per back-off period. During the back-off,
 * or when another attempt holds the turn, it throws 429 before any hashing.
 */
export async function reserveAttempt(
  deps: PasswordTurnDeps,
  backoff: BackoffPolicy,
  attempt: PasswordAttempt,
): Promise<ReservedAttempt> {
  const { username, now } = attempt
  const count = await deps.loginAttempts.countLoginAttempt(username, freeTurn(backoff, now))
  if (count.counted) return new Reservation(attempt, count.state)
  const turn = loginTurn(backoff, count.state, now)
  if (turn.kind === 'wait') throw throttled(deps, attempt, turn.seconds, 'in_backoff')
  if (await deps.loginAttempts.claimLoginAttempt(username, turn.seen, turn.next, turn.expiresAt)) {
    return new Reservation(attempt, turn.next)
  }
  throw throttled(deps, attempt, turn.lostWaitSeconds, 'attempt_taken')
}

/**
 * The password check itself, the only one on a client's path
 * (`verifyPassword`), with the reserved turn it spends.
 */
export function checkPassword(
  reservation: ReservedAttempt,
  password: string,
  hash: string,
): Promise<boolean> {
  Reservation.spend(reservation)
  return verifyPassword(password, hash)
}

/**
 * Reports a failed check, with its refusal code for the log line: the
 * reservation already counted it.
 */
export function reportFailedCheck(
  deps: PasswordTurnDeps,
  reservation: ReservedAttempt,
  code: GrantRefusal,
): void {
  deps.telemetry.emit('login_failed', { ...reservation.attempt.fields, code })
}

/**
 * The right password refunds this attempt's count (and clears the count if no
 * failure landed since): the one thing that lowers it. Best-effort: if it
 * fails, the count errs on the safe side (this success stays counted), and the
 * caller's success is not lost for it.
 */
export const refundAttempt = (
  deps: PasswordTurnDeps,
  reservation: ReservedAttempt,
): Promise<void> =>
  deps.loginAttempts
    .clearLoginFailures(reservation.attempt.username, reservation.record)
    .catch(() => undefined)

function throttled(
  deps: PasswordTurnDeps,
  attempt: PasswordAttempt,
  seconds: number,
  code: ThrottleRefusal,
): TooManyRequests {
  deps.telemetry.emit('login_throttled', attempt.fields)
  return new TooManyRequests(seconds, code)
}
