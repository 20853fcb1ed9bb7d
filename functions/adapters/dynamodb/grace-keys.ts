/**
 * The grace keys' directory on DynamoDB (functions/adapters/kms-grace-keys.ts):
 * each container's KMS-wrapped data key under the short reference its seals
 * carry, at `GRACEKEY#<ref>` / `GRACEKEY`. Only wrapped keys: a copy of the
 * table opens no seal. Retries follow retry.ts.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import type { GraceKeyDirectory } from '../kms-grace-keys.js'
import { documentClient, graceKeyItem } from './items.js'
import { withRetry } from './retry.js'
import { itemKey } from './table.js'

export class DynamoGraceKeys implements GraceKeyDirectory {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async saveGraceKey(ref: string, wrapped: string, at: number): Promise<void> {
    // A reference is a digest of its wrapped key: writing it again writes the same item.
    await withRetry('PutItem', () =>
      this.doc.send(
        new PutCommand({ TableName: this.tableName, Item: graceKeyItem.toItem(ref, wrapped, at) }),
      ),
    )
  }

  async findGraceKey(ref: string): Promise<string | undefined> {
    const { Item } = await withRetry('GetItem', () =>
      this.doc.send(
        new GetCommand({
          TableName: this.tableName,
          Key: itemKey.graceKey(ref),
          ConsistentRead: true,
        }),
      ),
    )
    return graceKeyItem.wrappedOf(Item)
  }
}
