import type { FailedLogins } from './ports.js'

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

/** The stored state, unless it is missing or old enough to be forgotten. */
export function recentFailures(
  policy: BackoffPolicy,
  state: FailedLogins | undefined,
  now: number,
): FailedLogins | undefined {
  if (!state || state.failures <= 0) return undefined
  return now - state.lastFailedAt < policy.windowSeconds * 1000 ? state : undefined
}

/** Epoch ms after which a record last touched at `at` may be deleted (its TTL). */
export const forgetAt = (policy: BackoffPolicy, at: number): number =>
  at + policy.windowSeconds * 1000
