import type { FailedLogins, FreeTurn, LoginFailure } from './ports.js'

/**
 * Login back-off per username (docs/design.md "HTTP API": 429 with `Retry-After`).
 *
 * Every failed login for a username counts, whether or not the user exists,
 * so that throttling tells nothing about which usernames are real. After
 * `freeFailures` failures each further failure doubles the wait, from
 * `baseSeconds` up to `maxSeconds`. Nothing ever locks an account for longer
 * than `maxSeconds` past its last failure, a success resets the count, and the
 * count is forgotten `windowSeconds` after the last failure.
 */
export interface BackoffPolicy {
  /** Failures allowed before any wait. @default 3 */
  readonly freeFailures: number
  /** The first wait, doubled by each further failure. @default 1 */
  readonly baseSeconds: number
  /** The longest wait. @default 900 (15 minutes) */
  readonly maxSeconds: number
  /** Failures are forgotten this long after the last one. @default 86400 (24 hours) */
  readonly windowSeconds: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  freeFailures: 3,
  baseSeconds: 1,
  maxSeconds: 900,
  windowSeconds: 86_400,
}

/** Seconds to wait after `failures` failures in a row. */
export function backoffSeconds(policy: BackoffPolicy, failures: number): number {
  const over = failures - policy.freeFailures
  if (over <= 0) return 0
  // 2 ** 40 already exceeds any cap; the bound keeps the arithmetic finite.
  return Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.min(over - 1, 40))
}

/** Epoch ms before which no password is checked for this username. */
export const lockedUntil = (policy: BackoffPolicy, state: FailedLogins): number =>
  state.lastFailedAt + backoffSeconds(policy, state.failures) * 1000

/**
 * The instant at or before which a last failure is forgotten, at `now`: the
 * count then starts again, whatever DynamoDB TTL has not deleted yet (it may
 * lag by days). The one window rule, for reads (`recentFailures`) and for
 * the store's atomic count (`failureAt`).
 */
const forgetBefore = (policy: BackoffPolicy, now: number): number =>
  now - policy.windowSeconds * 1000

/** The stored state, unless it is missing or old enough to be forgotten. */
export function recentFailures(
  policy: BackoffPolicy,
  state: FailedLogins | undefined,
  now: number,
): FailedLogins | undefined {
  if (!state || state.failures <= 0) return undefined
  return state.lastFailedAt > forgetBefore(policy, now) ? state : undefined
}

/** Epoch ms after which a record last touched at `at` may be deleted (its TTL). */
export const forgetAt = (policy: BackoffPolicy, at: number): number =>
  at + policy.windowSeconds * 1000

/**
 * A failed login at `now`, for `LoginAttempts.recordLoginFailure`: it adds
 * one to a recent count, or restarts a forgotten one at 1.
 */
export const failureAt = (policy: BackoffPolicy, now: number): LoginFailure => ({
  at: now,
  forgetBefore: forgetBefore(policy, now),
  expiresAt: forgetAt(policy, now),
})

/**
 * Every login attempt takes a turn before its password is checked, and counts
 * itself as a failure when it takes it (a success takes its count back), so
 * that N concurrent guesses check no more passwords than N guesses in a row.
 *
 * The first try is a free turn: one atomic write that adds one to the count
 * if the username has no record, or fewer than `freeFailures` failures still
 * within the window (`LoginAttempts.countLoginAttempt`). Concurrent attempts
 * all take part, and exactly as many win as there are free failures left.
 */
export const freeTurn = (policy: BackoffPolicy, now: number): FreeTurn => ({
  ...failureAt(policy, now),
  freeFailures: policy.freeFailures,
})

/**
 * What a login attempt at `now` may do when no free turn was left, given the
 * username's record as the free turn found it:
 * - `wait`: in back-off, answer 429 before any hashing;
 * - `claim`: the back-off has passed (or the count is forgotten); take the one
 *   attempt it allows by writing `next` over `seen` (counting this attempt as
 *   a failure up front), which only one of several concurrent attempts wins.
 */
export type LoginTurn =
  | { readonly kind: 'wait'; readonly seconds: number }
  | {
      readonly kind: 'claim'
      readonly seen: FailedLogins
      readonly next: FailedLogins
      /** Epoch ms after which the claimed record may be deleted (its TTL). */
      readonly expiresAt: number
      /** The back-off a lost claim answers with: the winner's failure would start it. */
      readonly lostWaitSeconds: number
    }

export function loginTurn(policy: BackoffPolicy, stored: FailedLogins, now: number): LoginTurn {
  const recent = recentFailures(policy, stored, now)
  if (recent) {
    const until = lockedUntil(policy, recent)
    if (until > now) return { kind: 'wait', seconds: (until - now) / 1000 }
  }
  // A forgotten count starts again at 1.
  const next: FailedLogins = {
    failures: (recent?.failures ?? 0) + 1,
    lastFailedAt: now,
    ...(stored.resets === undefined ? {} : { resets: stored.resets }),
  }
  return {
    kind: 'claim',
    seen: stored,
    next,
    expiresAt: forgetAt(policy, now),
    // Never a 429 that says "retry in 0 s": a lost claim waits at least the first wait.
    lostWaitSeconds: Math.max(backoffSeconds(policy, next.failures), policy.baseSeconds),
  }
}
