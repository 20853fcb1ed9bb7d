/**
 * The RegionSwitch port on DynamoDB (docs/multi-region.md "Declaring a region lost"): one
 * item per region in the global table, written by `npm run regions` in any healthy region,
 * read by the token functions only when a home did not answer.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import type { RegionDeclaration, RegionSwitch } from '../../core/regions.js'
import { documentClient, regionItem } from './items.js'
import { withRetry } from './retry.js'
import { itemKey } from './table.js'

export class DynamoRegionSwitch implements RegionSwitch {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async findRegionDeclaration(region: string): Promise<RegionDeclaration | undefined> {
    const { Item } = await withRetry('GetItem', () =>
      this.doc.send(
        // Eventually consistent: the declaration comes by replication anyway, and is cached.
        new GetCommand({ TableName: this.tableName, Key: itemKey.region(region) }),
      ),
    )
    return Item ? regionItem.fromItem(Item) : undefined
  }

  async declareRegion(declaration: RegionDeclaration): Promise<void> {
    // The last declaration wins, here as across regions (last writer wins).
    await withRetry('PutItem', () =>
      this.doc.send(
        new PutCommand({ TableName: this.tableName, Item: regionItem.toItem(declaration) }),
      ),
    )
  }
}
