import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  checkPassword,
  type PasswordAttempt,
  type ReservedAttempt,
  reserveAttempt,
} from '../../functions/core/password-turn.js'
import { dummyHash, hashPassword } from '../../functions/core/passwords.js'
import type { FailedLogins, LoginAttempts } from '../../functions/core/ports.js'
import { noTelemetry } from '../../functions/core/ports.js'
import { DEFAULT_BACKOFF } from '../../functions/core/throttle.js'

/**
 * "Every attempt takes a turn before its password is checked" (docs/design.md
 * "Login protection") is held by the types: `checkPassword` takes a
 * `ReservedAttempt`, and only `reserveAttempt` makes one.
 *
 * The `@ts-expect-error` lines below are compiled by `npm run lint` (tsc): if
 * any of them compiled, the directive would be unused and tsc would fail.
 */
function checksThatDoNotCompile(hash: string, attempt: PasswordAttempt, record: FailedLogins) {
  // @ts-expect-error a password check without a reservation
  void checkPassword(undefined, 'a password', hash)
  // @ts-expect-error a password check with the attempt alone, not reserved
  void checkPassword(attempt, 'a password', hash)
  // @ts-expect-error a look-alike with every public member: the private field makes the type nominal
  void checkPassword({ attempt, record }, 'a password', hash)
}

/** The free turn always counted: one stored record, no DynamoDB (the rule under test is core's). */
const freeTurns = (): LoginAttempts =>
  ({
    countLoginAttempt: async (_username: string, turn: { at: number }) => ({
      counted: true,
      state: { failures: 1, lastFailedAt: turn.at },
    }),
  }) as unknown as LoginAttempts

const attempt: PasswordAttempt = { username: 'someone', now: 1_000_000, fields: {} }

describe('a password check', () => {
  it('takes a reserved attempt, which only reserveAttempt makes (checked by tsc)', () => {
    expectTypeOf(checkPassword).parameter(0).toEqualTypeOf<ReservedAttempt>()
    expectTypeOf(reserveAttempt).returns.resolves.toEqualTypeOf<ReservedAttempt>()
    expect(checksThatDoNotCompile).toBeTypeOf('function')
  })

  it('refuses, at run time too, anything that is not a reservation', async () => {
    const lookAlike = { attempt, record: { failures: 1, lastFailedAt: 0 } }
    expect(() => checkPassword(lookAlike as never, 'a password', dummyHash())).toThrow(TypeError)
  })

  it('spends the reservation: one reserved attempt checks one password', async () => {
    const deps = { loginAttempts: freeTurns(), telemetry: noTelemetry }
    const hash = await hashPassword('the password', { ln: 10, r: 8, p: 1 })
    const reservation = await reserveAttempt(deps, DEFAULT_BACKOFF, attempt)
    expect(await checkPassword(reservation, 'the password', hash)).toBe(true)
    expect(() => checkPassword(reservation, 'the password', hash)).toThrow(
      'a reserved attempt allows one password check',
    )
    const next = await reserveAttempt(deps, DEFAULT_BACKOFF, attempt)
    expect(await checkPassword(next, 'a guess', hash)).toBe(false)
  })

  it('is made through checkPassword alone by login and the password change', () => {
    for (const file of ['functions/core/login.ts', 'functions/core/password-change.ts']) {
      const source = readFileSync(join(import.meta.dirname, '../..', file), 'utf8')
      expect(source, file).not.toMatch(/\bverifyPassword\b/)
      expect(source, file).toMatch(/\bcheckPassword\(reservation, /)
    }
  })
})
