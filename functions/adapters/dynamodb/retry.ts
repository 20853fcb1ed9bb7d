/**
 * The one retry policy of the DynamoDB adapters (docs/design.md "Storage"),
 * and what each AWS error means to them. Every call goes through `withRetry`.
 * It is the second layer of the retry budget (core/retries.ts, docs/design.md
 * "Faults").
 *
 * The SDK already retries throttling, 5xx answers and dropped connections
 * itself (`AWS_MAX_ATTEMPTS`, `AWS_CALL_TIMEOUT_MS` in config.ts). What it
 * does not retry, and `withRetry` does, `MAX_ATTEMPTS` times in all with the
 * budget's short jittered pause:
 * - `TransactionConflictException`: a single-item write refused because a
 *   transaction holds its item for a moment (a revoke during a rotation, a
 *   logout everywhere during a login). Nothing was written; trying again is safe.
 * - an attempt that answers `AGAIN`: BatchGetItem keys left unprocessed, or a
 *   conditional write that lost to a concurrent one and must be re-decided
 *   (the failed-login count).
 * When the attempts are spent: `TemporarilyUnavailable` (503, nothing lost).
 *
 * Not retried: a lost condition (`ConditionalCheckFailedException`) and a
 * transaction cancelled for conditions or conflicts. Each attempt turns those
 * into a domain result itself (rotate: `lost`, and refresh looks again;
 * createSession: refused, or a 503 on a conflict; revokeSession: nothing to do).
 * Any other error an attempt throws becomes `TemporarilyUnavailable` at once
 * (the SDK has spent its own retries on it), so no AWS exception leaves the
 * adapters.
 */
import type { CancellationReason } from '@aws-sdk/client-dynamodb'
import { OAuthError, TemporarilyUnavailable } from '../../core/errors.js'
import { pause, RETRIES } from '../../core/retries.js'

/** Attempts in all, the first included. */
export const MAX_ATTEMPTS = RETRIES.storeAttempts

/** What an attempt answers when it must be made again. */
export const AGAIN: unique symbol = Symbol('again')

/**
 * Runs `attempt` under the retry policy above. `operation` names the AWS call
 * in the 503's private detail (the logs).
 */
export async function withRetry<T>(
  operation: string,
  attempt: () => Promise<T | typeof AGAIN>,
  wait: (attempt: number) => Promise<void> = pause,
): Promise<T> {
  for (let n = 1; ; n++) {
    let outcome: T | typeof AGAIN
    let conflict: unknown
    try {
      outcome = await attempt()
    } catch (error) {
      if (!isAwsError(error, 'TransactionConflictException')) throw asDomainError(operation, error)
      conflict = error
      outcome = AGAIN
    }
    if (outcome !== AGAIN) return outcome
    if (n >= MAX_ATTEMPTS) {
      throw new TemporarilyUnavailable(`dynamodb ${operation} refused ${MAX_ATTEMPTS} times`, {
        cause: conflict,
      })
    }
    await wait(n)
  }
}

/** Our own errors pass; an AWS failure the attempt did not turn into a result becomes a 503. */
function asDomainError(operation: string, error: unknown): OAuthError {
  if (error instanceof OAuthError) return error
  const name = error instanceof Error ? error.name : 'unknown error'
  return new TemporarilyUnavailable(`dynamodb ${operation} failed: ${name}`, { cause: error })
}

const isAwsError = (error: unknown, name: string): boolean =>
  error instanceof Error && error.name === name

/** A single-item write whose condition expression was false. */
export const conditionFailed = (error: unknown): boolean =>
  isAwsError(error, 'ConditionalCheckFailedException')

/** The cancellation reasons of a cancelled transaction, one per item; undefined for other errors. */
export function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if (!isAwsError(error, 'TransactionCanceledException')) return undefined
  return (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? []
}

/**
 * True when a transaction was cancelled for the given reasons only (any
 * other reason, such as throttling, is a fault, not a lost race).
 */
export function cancelledBy(error: unknown, ...codes: string[]): boolean {
  const failed = (cancellationReasons(error) ?? [])
    .map((reason) => reason.Code)
    .filter((code) => code !== undefined && code !== 'None')
  return failed.length > 0 && failed.every((code) => codes.includes(code as string))
}

/**
 * A transaction's items, each under a name, so that a cancellation's reasons
 * (one per item, in order) are read by name rather than by position.
 */
export class NamedItems<Name extends string, Entry> {
  readonly #names: Name[] = []
  readonly items: Entry[] = []

  add(name: Name, ...entries: Entry[]): this {
    for (const entry of entries) {
      this.#names.push(name)
      this.items.push(entry)
    }
    return this
  }

  /** The reasons of the items named `name`, in order; none for another error. */
  reasons(error: unknown, name: Name): CancellationReason[] {
    const reasons = cancellationReasons(error) ?? []
    return reasons.filter((_, index) => this.#names[index] === name)
  }
}
