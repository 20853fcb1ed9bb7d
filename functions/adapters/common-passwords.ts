import { dictionary } from '@zxcvbn-ts/language-common'
import type { CommonPasswords } from '../core/password-policy.js'

/**
 * The offline list of common and breached passwords (core/password-policy.ts,
 * rule 3): the `passwords-common` dictionary of `@zxcvbn-ts/language-common`
 * (MIT, maintained with zxcvbn-ts): 49,233 passwords seen more than 10 times
 * in Mark Burnett's 10 million leaked passwords (xato.net), lower-cased, ranked
 * by frequency, without those zxcvbn finds cheaper as a pattern. About 370 KiB
 * in the bundle (compressed as the package ships it); decompressed into a Set
 * at cold start, once: about 30 ms and 8 MB (docs/benchmarks.md). Only the
 * password function's bundle holds it (test/infra/bundles.test.ts).
 */
const LIST: ReadonlySet<string> = new Set(dictionary['passwords-common'])

/** How many passwords the list holds. */
export const COMMON_PASSWORDS_SIZE = LIST.size

/** The list compares letter case aside, as it was built (lower-cased). */
export const commonPasswords: CommonPasswords = {
  has: (password) => LIST.has(password.normalize('NFC').toLowerCase()),
}
