/**
 * Envelope signing keys on DynamoDB (functions/adapters/envelope-signer.ts):
 * one item per key id, `SIGNINGKEY#<id>` / `SIGNINGKEY`, holding the public
 * key and the private key as KMS wrapped it. Written once (a conditional put:
 * the first container to generate a pair wins, the others read it), never
 * changed, no TTL: a key id is never reused (lib/signing-keys.ts). A copy of
 * the table holds no private key in plain form. Retries follow retry.ts.
 *
 * With several regions (docs/multi-region.md "Envelope keys"), outside the primary
 * region: a pair this region's replica does not have yet is read from the primary's
 * replica, and created there. Conditions are evaluated against the local replica and last
 * writer wins between replicas, so two regions creating a pair for one id each in their
 * own replica would both succeed, and the pair that replication discards would have signed
 * tokens no JWKS publishes. Deciding every creation in one replica makes it exact: a
 * creation there that loses its condition returns the winner's pair, which replicates
 * everywhere. A region that cannot reach the primary cannot create a pair (503), but reads
 * every pair that has replicated.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
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
  ...(item.wrapping === 'multi-region' && { wrapping: 'multi-region' as const }),
})

/** A replica of the table: its client (of its region) and its name. */
export interface TableReplica {
  readonly client: DynamoDBClient
  readonly tableName: string
}

export class DynamoSigningKeys implements EnvelopeKeyStore {
  private readonly doc: DynamoDBDocumentClient
  /** Where pairs are created and, when missing here, read: the primary's replica, or this. */
  private readonly deciding: { readonly doc: DynamoDBDocumentClient; readonly tableName: string }
  private readonly elsewhere: boolean

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
    /** Outside the primary region: the primary's replica (`ENVELOPE_KEY_PAIR_REGION`). */
    primary?: TableReplica,
  ) {
    this.doc = documentClient(client)
    this.elsewhere = primary !== undefined
    this.deciding = primary
      ? { doc: documentClient(primary.client), tableName: primary.tableName }
      : { doc: this.doc, tableName }
  }

  async findKeyPair(id: string): Promise<StoredKeyPair | undefined> {
    // This region's replica first: every pair created before the last replication is there.
    const here = await this.read(this.doc, this.tableName, id)
    if (here || !this.elsewhere) return here
    return this.read(this.deciding.doc, this.deciding.tableName, id)
  }

  private async read(
    doc: DynamoDBDocumentClient,
    tableName: string,
    id: string,
  ): Promise<StoredKeyPair | undefined> {
    const { Item } = await withRetry('GetItem', () =>
      doc.send(
        new GetCommand({ TableName: tableName, Key: itemKey.signingKey(id), ConsistentRead: true }),
      ),
    )
    return Item ? fromItem(Item) : undefined
  }

  async createKeyPair(id: string, pair: StoredKeyPair): Promise<StoredKeyPair> {
    const { doc, tableName } = this.deciding
    const written = await withRetry('PutItem', () =>
      doc
        .send(
          new PutCommand({
            TableName: tableName,
            Item: {
              ...itemKey.signingKey(id),
              alg: pair.alg,
              public_key: pair.publicKey,
              wrapped_private_key: pair.wrappedPrivateKey,
              ...(pair.wrapping && { wrapping: pair.wrapping }),
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
    // The winner, where it was decided (it may not have replicated here yet).
    const stored = await this.read(doc, tableName, id)
    if (!stored) throw new Error(`envelope key ${id}: neither written nor found`)
    return stored
  }
}

/**
 * A Lambda function's store of envelope key pairs: this region's replica and, outside the
 * primary (`keyPairRegion`, `ENVELOPE_KEY_PAIR_REGION`), the primary's, reached by a client
 * of that region built with the same options and wrapping (`wrap`, the tracing).
 */
export function lambdaKeyPairStore(
  client: DynamoDBClient,
  tableName: string,
  keyPairRegion: string | undefined,
  options: ConstructorParameters<typeof DynamoDBClient>[0] & object,
  wrap: (client: DynamoDBClient) => DynamoDBClient = (c) => c,
): DynamoSigningKeys {
  const primary = keyPairRegion
    ? { client: wrap(new DynamoDBClient({ ...options, region: keyPairRegion })), tableName }
    : undefined
  return new DynamoSigningKeys(client, tableName, Date.now, primary)
}
