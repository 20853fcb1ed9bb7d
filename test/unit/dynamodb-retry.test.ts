/**
 * The DynamoDB adapters' one retry policy (functions/adapters/dynamodb/retry.ts),
 * with the AWS SDK's own exception classes and a recorded, instant pause.
 */
import {
  ConditionalCheckFailedException,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb'
import { describe, expect, it } from 'vitest'
import {
  AGAIN,
  cancelledBy,
  MAX_ATTEMPTS,
  withRetry,
} from '../../functions/adapters/dynamodb/retry.js'
import { InvalidGrant, TemporarilyUnavailable } from '../../functions/core/errors.js'

const $metadata = { httpStatusCode: 400 }
const conflict = () => new TransactionConflictException({ message: 'conflict', $metadata })
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'cancelled',
    $metadata,
    CancellationReasons: codes.map((Code) => ({ Code })),
  })

/** Runs withRetry over a script of outcomes (a value, AGAIN, or an error to throw). */
function run(script: unknown[]) {
  const waits: number[] = []
  let attempts = 0
  const result = withRetry(
    'UpdateItem',
    async () => {
      const next = script[attempts++]
      if (next instanceof Error) throw next
      return next as string | typeof AGAIN
    },
    async (attempt) => {
      waits.push(attempt)
    },
  )
  return { result, waits, attempts: () => attempts }
}

describe('the DynamoDB retry policy', () => {
  it(`tries a write refused by a transaction in progress ${MAX_ATTEMPTS} times in all, pausing between`, async () => {
    const ok = run([conflict(), conflict(), 'written'])
    expect(await ok.result).toBe('written')
    expect(ok.waits).toEqual([1, 2])

    const refused = run([conflict(), conflict(), conflict(), 'never'])
    await expect(refused.result).rejects.toBeInstanceOf(TemporarilyUnavailable)
    expect(refused.attempts()).toBe(MAX_ATTEMPTS)
  })

  it('tries again when an attempt asks to (keys left unprocessed, a lost race to re-decide)', async () => {
    const ok = run([AGAIN, 'read'])
    expect(await ok.result).toBe('read')
    const refused = run([AGAIN, AGAIN, AGAIN, 'never'])
    await expect(refused.result).rejects.toBeInstanceOf(TemporarilyUnavailable)
    expect(refused.attempts()).toBe(MAX_ATTEMPTS)
  })

  it('turns every other AWS error into a 503 at once: the SDK already retried it', async () => {
    for (const error of [
      new ThrottlingException({ message: 'slow down', $metadata }),
      // An attempt that did not turn its lost condition into a result.
      new ConditionalCheckFailedException({ message: 'condition', $metadata }),
      cancelled('ConditionalCheckFailed', 'None'),
    ]) {
      const { result, attempts, waits } = run([error, 'never'])
      const thrown = await result.catch((e: unknown) => e)
      expect(thrown).toBeInstanceOf(TemporarilyUnavailable)
      expect((thrown as TemporarilyUnavailable).detail).toBe(
        `dynamodb UpdateItem failed: ${error.name}`,
      )
      expect(attempts()).toBe(1)
      expect(waits).toEqual([])
    }
  })

  it('lets the domain’s own errors through untouched', async () => {
    const refusal = new InvalidGrant('unknown_refresh_token')
    const { result } = run([refusal])
    await expect(result).rejects.toBe(refusal)
  })
})

describe('a cancelled transaction', () => {
  it('counts as lost only when every failed item failed for the given reasons', () => {
    expect(cancelledBy(cancelled('None', 'ConditionalCheckFailed'), 'ConditionalCheckFailed')).toBe(
      true,
    )
    const mixed = cancelled('TransactionConflict', 'ConditionalCheckFailed')
    expect(cancelledBy(mixed, 'ConditionalCheckFailed')).toBe(false)
    expect(cancelledBy(mixed, 'ConditionalCheckFailed', 'TransactionConflict')).toBe(true)
    // Throttling cancels a transaction too: a fault, never a lost race.
    expect(cancelledBy(cancelled('ThrottlingError'), 'ConditionalCheckFailed')).toBe(false)
    expect(cancelledBy(cancelled('None', 'None'), 'ConditionalCheckFailed')).toBe(false)
    expect(cancelledBy(conflict(), 'TransactionConflict')).toBe(false)
  })
})
