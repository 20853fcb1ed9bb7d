import type { PasswordPolicy } from '../core/password-policy.js'
import type { Telemetry } from '../core/ports.js'
import { breachRange } from './breach-range.js'
import { commonPasswords } from './common-passwords.js'

/**
 * The password policy with its real parts: the offline list, and the range
 * API when one is configured (`PASSWORD_BREACH_CHECK_URL`, off by default).
 * Imported only where passwords are set (the password function, the users
 * command, local mode): the list stays out of every other bundle.
 */
export function passwordPolicy(options: {
  readonly telemetry: Telemetry
  readonly breachCheck?: { readonly url: string; readonly timeoutMs: number } | undefined
}): PasswordPolicy {
  return {
    common: commonPasswords,
    ...(options.breachCheck && { breached: breachRange(options.breachCheck) }),
    telemetry: options.telemetry,
  }
}
