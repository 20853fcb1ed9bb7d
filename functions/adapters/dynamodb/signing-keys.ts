/**
 * Envelope signing keys on DynamoDB (functions/adapters/envelope-signer.ts):
 * one item per key id, `SIGNINGKEY#<id>` / `SIGNINGKEY`, holding the public
 * key and the private key as KMS wrapped it. Written once (a conditional put:
 * the first container to generate a pair wins, the others read it), never
 * changed, no TTL: a key id is never reused (lib/signing-keys.ts). A copy of
 * the table holds no private key in plain form. Retries follow retry.ts.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import type { SigningAlgorithm } from '../../core/ports.js'
import type { EnvelopeKeyStore, StoredKeyPair } from '../envelope-signer.js'
import { documentClient, type Item } from './items.js'
import { conditionFailed, withRetry } from './retry.js'
import { itemKey, NOT_THERE } from './table.js'

const fromItem = (item: Item): StoredKeyPair => ({
  alg: item.alg as SigningAlgorithm,
  publicKey: String(item.public_key),
  wrappedPrivateKey: String(item.wrapped_private_key),
})

export class DynamoSigningKeys implements EnvelopeKeyStore {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.doc = documentClient(client)
  }

  async findKeyPair(id: string): Promise<StoredKeyPair | undefined> {
    const { Item } = await withRetry('GetItem', () =>
      this.doc.send(
        new GetCommand({
          TableName: this.tableName,
          Key: itemKey.signingKey(id),
          ConsistentRead: true,
        }),
      ),
    )
    return Item ? fromItem(Item) : undefined
  }

  async createKeyPair(id: string, pair: StoredKeyPair): Promise<StoredKeyPair> {
    const written = await withRetry('PutItem', () =>
      this.doc
        .send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...itemKey.signingKey(id),
              alg: pair.alg,
              public_key: pair.publicKey,
              wrapped_private_key: pair.wrappedPrivateKey,
              created_at: this.now(),
            },
            // One pair per key id, whoever generates first.
            ...NOT_THERE,
          }),
        )
        .then(
          () => true,
          (error: unknown) => {
            if (conditionFailed(error)) return false
            throw error
          },
        ),
    )
    if (written) return pair
    const stored = await this.findKeyPair(id)
    if (!stored) throw new Error(`envelope key ${id}: neither written nor found`)
    return stored
  }
}
