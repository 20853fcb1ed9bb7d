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
  /** DynamoDB write capacity units, table plus indexes. */
  readonly writeUnits: number
  /** KMS requests, by operation. */
  readonly kms: Readonly<Record<string, number>>
  /** The DynamoDB calls in order, each with its units (`BatchGetItem 2`). */
  readonly dynamodb: readonly string[]
}

/** Per signing mode: a warm refresh (`POST /token`) and a warm login (`POST /login`). */
export const MEASURED_PER_CALL: Readonly<
  Record<'kms', { readonly refresh: CallCost; readonly login: CallCost }>
> = {
  kms: {
    refresh: {
      readUnits: 3,
      writeUnits: 6,
      kms: { Sign: 1 },
      dynamodb: ['BatchGetItem 3', 'TransactWriteItems 6 (table 4, gsi1 2)'],
    },
    login: {
      readUnits: 0.5,
      writeUnits: 10,
      kms: { Sign: 1 },
      dynamodb: [
        'Query 0.5 (table 0, gsi1 0.5)',
        'TransactWriteItems 6 (table 4, gsi1 2)',
        'UpdateItem 2 (table 1, gsi1 1)',
        'UpdateItem 2 (table 1, gsi1 1)',
      ],
    },
  },
}
