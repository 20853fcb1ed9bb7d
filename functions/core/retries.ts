/**
 * The retry budget, from the SDK's attempts to ours, in one place (docs/design.md
 * "Faults"). Three layers, each retrying only what the one below leaves:
 *
 * 1. The AWS SDK makes `AWS_MAX_ATTEMPTS` attempts of each request (throttling, 5xx,
 *    timeouts of `AWS_CALL_TIMEOUT_MS`, dropped connections). What still fails is a
 *    503 at once: no layer above tries it again.
 * 2. The DynamoDB adapters (adapters/dynamodb/retry.ts) call a store method's request
 *    up to `storeAttempts` times for what the SDK does not retry: a write refused by a
 *    transaction in progress, keys left unprocessed, a lost race to re-decide.
 * 3. A rotation (core/refresh.ts) runs up to `rotationAttempts` rounds of its write and
 *    a re-read when a collision cancelled the write but left the session as it was.
 *
 * Each layer's attempts multiply those of the layers below; `retryBudget` says how far.
 */

export const RETRIES = {
  /** Requests of one store method, the first included (layer 2). */
  storeAttempts: 3,
  /** Rounds of one rotation, the first included (layer 3). */
  rotationAttempts: 4,
} as const

/**
 * The most attempts (requests as the SDK sends them) each layer may spend, given the
 * SDK's attempts per request (`AWS_MAX_ATTEMPTS`).
 */
export interface RetryBudget {
  /** One request (layer 1). */
  readonly request: number
  /** One store method (layers 1 and 2). */
  readonly storeCall: number
  /**
   * One rotation's collisions (layers 1 and 3): per round, the write (the session's
   * conditional UpdateItem, which layer 2 does not retry: a lost condition is the
   * rotation's `lost`) and the re-read.
   */
  readonly rotation: number
}

export function retryBudget(sdkAttempts: number): RetryBudget {
  return {
    request: sdkAttempts,
    storeCall: RETRIES.storeAttempts * sdkAttempts,
    rotation: RETRIES.rotationAttempts * 2 * sdkAttempts,
  }
}

/**
 * The pause before attempt `attempt + 1` of layers 2 and 3: 10-30 ms after the first,
 * 20-40 ms after the second, and so on; jittered, so that two colliding writers part.
 */
export const pause = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, attempt * 10 + Math.random() * 20))
