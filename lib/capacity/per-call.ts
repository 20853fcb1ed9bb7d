/**
 * What one warm call costs, as the stack suite measures it on the synthesized
 * stack (test/stack/capacity.test.ts): DynamoDB Local's consumed capacity with
 * `ReturnConsumedCapacity: INDEXES` (table plus indexes) and the KMS requests,
 * the mean of 12 warm calls with a Chrome user agent. The capacity model
 * (model.ts) prices these figures; the stack suite fails when they and its
 * measurement disagree.
 */

/** One warm call's cost. */
export interface CallCost {
  /** DynamoDB read capacity units, table plus indexes. */
  readonly readUnits: number
  /** DynamoDB write capacity units, table plus indexes, as DynamoDB Local reports them. */
  readonly writeUnits: number
  /**
   * The write units AWS bills, by its published rules: `writeUnits`, with each
   * TransactWriteItems counted as 2 per KB of every item it touches (its
   * ConditionChecks' included) and of every index entry it writes. DynamoDB
   * Local reports less for a transaction: it adds up only the distinct
   * per-item figures (test/stack/cloud.ts `MeteredCall.billed`).
   */
  readonly billedWriteUnits: number
  /** KMS requests, by operation. */
  readonly kms: Readonly<Record<string, number>>
  /** The DynamoDB calls in order, each with its units (`BatchGetItem 2`). */
  readonly dynamodb: readonly string[]
}

/** A warm refresh (`POST /token`) and a warm login (`POST /login`). */
export interface PerCall {
  readonly refresh: CallCost
  readonly login: CallCost
}

/** Per signing mode, as the stack suite measures them today. */
export const MEASURED_PER_CALL: Readonly<Record<'kms' | 'envelope', PerCall>> = {
  kms: {
    refresh: {
      readUnits: 2,
      writeUnits: 2,
      billedWriteUnits: 2,
      kms: { Sign: 1 },
      dynamodb: ['BatchGetItem 2', 'PutItem 1', 'UpdateItem 1'],
    },
    login: {
      readUnits: 0.5,
      writeUnits: 5,
      billedWriteUnits: 9,
      kms: { Sign: 1 },
      dynamodb: [
        'PutItem 1',
        'Query 0.5 (table 0, gsi1 0.5)',
        'TransactWriteItems 2 (table 2, billed 6)',
        'UpdateItem 1',
        'UpdateItem 1',
      ],
    },
  },
  // No KMS call on a warm call: the private key was unwrapped at the container's start.
  envelope: {
    refresh: {
      readUnits: 2,
      writeUnits: 2,
      billedWriteUnits: 2,
      kms: {},
      dynamodb: ['BatchGetItem 2', 'PutItem 1', 'UpdateItem 1'],
    },
    login: {
      readUnits: 0.5,
      writeUnits: 5,
      billedWriteUnits: 9,
      kms: {},
      dynamodb: [
        'PutItem 1',
        'Query 0.5 (table 0, gsi1 0.5)',
        'TransactWriteItems 2 (table 2, billed 6)',
        'UpdateItem 1',
        'UpdateItem 1',
      ],
    },
  },
}

/**
 * The same measurement of the code before issue 17 (commit 9a3e159, KMS
 * signing), kept to price "before" in docs/capacity.md: a refresh read three
 * items and wrote one transaction (the session, rewritten in gsi1, and the
 * child's token record); a login's turn and its clear each rewrote gsi1, and
 * its transaction held a token record besides the session, its guard and its
 * event.
 */
export const BEFORE_ISSUE_17: PerCall = {
  refresh: {
    readUnits: 3,
    writeUnits: 10,
    billedWriteUnits: 10,
    kms: { Sign: 1 },
    dynamodb: ['BatchGetItem 3', 'TransactWriteItems 10 (table 6, gsi1 4, billed 10)'],
  },
  login: {
    readUnits: 0.5,
    writeUnits: 10,
    billedWriteUnits: 14,
    kms: { Sign: 1 },
    dynamodb: [
      'Query 0.5 (table 0, gsi1 0.5)',
      'TransactWriteItems 6 (table 4, gsi1 2, billed 10)',
      'UpdateItem 2 (table 1, gsi1 1)',
      'UpdateItem 2 (table 1, gsi1 1)',
    ],
  },
}
