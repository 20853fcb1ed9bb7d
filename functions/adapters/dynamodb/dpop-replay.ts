/**
 * The DpopReplayStore port on DynamoDB (docs/design.md "DPoP"): each proof
 * used at the token endpoint is one item, written by a conditional put and
 * deleted by TTL once the proof is too old to be accepted anyway. The rule
 * (single use within the proof's window) lives in core/dpop.ts; this file
 * maps the item and its condition only. Retries follow retry.ts.
 *
 * A put whose answer is lost after DynamoDB committed it is retried by the
 * SDK and meets its own item: each call marks its write, so that a retry
 * counts as the first use it was, not as a replay (a fault must not turn
 * into a refused proof).
 */
import { randomUUID } from 'node:crypto'
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb'
import type { DpopProof, DpopReplayStore } from '../../core/dpop.js'
import { documentClient, dpopProofItem } from './items.js'
import { conditionFailed, withRetry } from './retry.js'
import { TABLE_SCHEMA } from './table.js'

export class DynamoDpopReplay implements DpopReplayStore {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async recordProof(
    proof: Pick<DpopProof, 'jkt' | 'jti' | 'acceptedUntil'>,
    now: number,
  ): Promise<boolean> {
    // Marks this call's write: if DynamoDB committed it but the answer was lost, the SDK's
    // retry meets the item, and the mark tells our own write from a replay.
    const attempt = randomUUID()
    return withRetry('PutItem', () =>
      this.doc
        .send(
          new PutCommand({
            TableName: this.tableName,
            Item: dpopProofItem.toItem(proof, attempt),
            // A first use, or a record whose proof has ended (TTL may lag by days, and a
            // client may reuse a jti once its proof is too old to be accepted anyway).
            // Whole seconds, rounded down: a record is live at least until its proof ends.
            ConditionExpression: 'attribute_not_exists(#pk) OR #ttl < :now',
            ExpressionAttributeNames: {
              '#pk': TABLE_SCHEMA.partitionKey,
              '#ttl': TABLE_SCHEMA.ttlAttribute,
            },
            ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        )
        .then(
          () => true,
          (error: unknown) => {
            if (!conditionFailed(error)) throw error
            // The document client leaves the error's item in attribute-value form.
            const found = (error as { Item?: Record<string, AttributeValue> }).Item
            return found?.attempt?.S === attempt
          },
        ),
    )
  }
}
