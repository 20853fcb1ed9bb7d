import { InvalidRequest } from './errors.js'
import { MAX_PASSWORD_BYTES } from './passwords.js'
import type { Telemetry } from './ports.js'

/**
 * The one password policy for every new password (NIST SP 800-63B §3.1.1.2):
 * `users add`, `users set-password` and `POST /me/password`
 * (docs/security.md "Passwords and usernames"):
 *
 * 1. 8 to 1,024 UTF-8 bytes, never truncated;
 * 2. not the current password;
 * 3. not on a list of common and breached passwords, offline
 *    (functions/adapters/common-passwords.ts);
 * 4. optionally (off by default), not in a breach corpus that a k-anonymity
 *    range API knows (functions/adapters/breach-range.ts); when that service
 *    cannot be reached, the password is accepted and the miss is counted.
 *
 * A refusal is `InvalidRequest` naming the parameter and the rule, never the
 * password.
 */
export interface PasswordPolicy {
  /** The offline list (rule 3). */
  readonly common: CommonPasswords
  /** The range API (rule 4). @default none: the check is off */
  readonly breached?: BreachedPasswords | undefined
  /** Where a range API that could not be reached is counted (`breach_check_unavailable`). */
  readonly telemetry: Telemetry
}

/** A list of common and breached passwords, held in memory. */
export interface CommonPasswords {
  /** True when `password` is on the list, letter case aside. */
  has(password: string): boolean
}

/** What a breached-password range API said of a password. */
export type BreachVerdict = 'breached' | 'not_found' | 'unavailable'

/** A k-anonymity range API: it is sent the first 5 hex characters of the SHA-1, no more. */
export interface BreachedPasswords {
  check(password: string): Promise<BreachVerdict>
}

/** The shortest password `users add`, `users set-password` and `POST /me/password` accept, in UTF-8 bytes. */
export const MIN_PASSWORD_BYTES = 8

/** Rule 1 alone: 8 to 1,024 UTF-8 bytes. `name` is the parameter the error names. */
export function assertPasswordRule(password: string, name = 'password'): void {
  const bytes = Buffer.byteLength(password, 'utf8')
  if (bytes < MIN_PASSWORD_BYTES || bytes > MAX_PASSWORD_BYTES) {
    throw new InvalidRequest(`${name} must be ${MIN_PASSWORD_BYTES} to ${MAX_PASSWORD_BYTES} bytes`)
  }
}

/**
 * Rules 1 to 3, which cost no hashing and no call: before anything is read,
 * hashed or counted. `current` is the current password as the caller gave it
 * (the password change's `current_password`); `users set-password`, which has
 * only the stored hash, checks rule 2 itself (`setPassword`).
 */
export function assertNewPassword(
  policy: Pick<PasswordPolicy, 'common'>,
  password: string,
  options: { readonly name?: string; readonly current?: string } = {},
): void {
  const name = options.name ?? 'password'
  assertPasswordRule(password, name)
  // Compared as hashing compares them (NFC): two spellings of one password are one.
  if (options.current !== undefined && samePassword(password, options.current)) {
    throw new InvalidRequest(`${name} must differ from the current password`)
  }
  if (policy.common.has(password)) {
    throw new InvalidRequest(`${name} is on a list of common passwords`)
  }
}

/**
 * Rule 4, when the policy has a range API: one call. An unreachable service
 * (or an answer it cannot read) accepts the password, counted in
 * `breach_check_unavailable`: the check must not lock users out of changing
 * their password.
 */
export async function assertNotBreached(
  policy: PasswordPolicy,
  password: string,
  name = 'password',
): Promise<void> {
  if (!policy.breached) return
  const verdict = await policy.breached.check(password)
  if (verdict === 'unavailable') policy.telemetry.emit('breach_check_unavailable')
  if (verdict === 'breached') throw new InvalidRequest(`${name} appears in a known data breach`)
}

/** The same password, as scrypt would see it (passwords.ts hashes the NFC form). */
export const samePassword = (a: string, b: string): boolean =>
  a.normalize('NFC') === b.normalize('NFC')
