/**
 * The one DynamoDB table (docs/design.md "Storage"): key schema, GSI, TTL
 * attribute and the key of every item. The adapters, local mode and the tests
 * create the table with `tableDefinition`; the CDK stack (lib/token-service-table.ts)
 * builds it from `TABLE_SCHEMA`; so the three cannot drift apart.
 *
 * | item            | pk                | sk               | gsi1pk             | gsi1sk                    |
 * |-----------------|-------------------|------------------|--------------------|---------------------------|
 * | user            | `USER#<sub>`      | `USER`           | `USERNAME#<name>`  | `USER`                    |
 * | username claim  | `USERNAME#<name>` | `USERNAME`       |                    |                           |
 * | session         | `SESSION#<sid>`   | `SESSION`        |                    |                           |
 * | session pointer | `USER#<sub>`      | `SESSION#<sid>`  |                    |                           |
 * | retired token   | `SESSION#<sid>`   | `TOKEN#<hash>`   |                    |                           |
 * | failed logins   | `USERNAME#<name>` | `THROTTLE`       |                    |                           |
 * | grace key       | `GRACEKEY#<ref>`  | `GRACEKEY`       |                    |                           |
 * | envelope key    | `SIGNINGKEY#<id>` | `SIGNINGKEY`     |                    |                           |
 * | security event  | `EVENT#<id>`      | `EVENT`          |                    |                           |
 * | DPoP proof used | `DPOP#<jkt>`      | `JTI#<hash>`     |                    |                           |
 * | region switch   | `REGION#<name>`   | `REGION`         |                    |                           |
 *
 * The one GSI finds a user by username at login (projection ALL: login reads
 * the user from it). Nothing that changes often is in it: a rotation rewrites
 * the session item only, and the failed-login record is read by its key. A
 * user's sessions are listed through their pointers, which sit in the user's
 * partition and never change (strongly consistent, keys only).
 *
 * Sessions written before issue 17 carry `gsi1pk = USER#<sub>` and
 * `gsi1sk = SESSION#<created>#<sid>` instead of a pointer (`legacyIndexedAt`),
 * and failed-login records written before it carry `USERNAME#<name>` /
 * `THROTTLE`: the adapters still read and list them, and a failed-login
 * record leaves the index at its next write (docs/operations.md "Upgrading
 * to the issue 17 layout").
 *
 * A security event is an outbox item (docs/design.md "Security events"): written
 * with the change it reports, read by nobody but the table's stream, whose
 * NEW_IMAGE records the forwarder turns into CloudEvents. Its own partition per
 * event spreads the writes; it expires `OUTBOX_RETENTION_DAYS` after the event.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb'

export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /**
   * Epoch seconds after which DynamoDB may delete the item. Clean-up only:
   * TTL may lag by days, so every expiry is enforced in code.
   */
  ttlAttribute: 'expires_at',
  gsi1: { indexName: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  /** What the stream records carry: the forwarder needs the outbox item as written. */
  streamViewType: 'NEW_IMAGE',
} as const

/**
 * How long an outbox item stays in the table after its event: longer than the
 * stream keeps a record (24 hours), so that events a failed forwarding left in
 * the dead-letter queue can be sent again from the table (docs/operations.md).
 */
export const OUTBOX_RETENTION_DAYS = 7

export const GSI1 = TABLE_SCHEMA.gsi1.indexName
export const TTL_ATTRIBUTE = TABLE_SCHEMA.ttlAttribute

/**
 * CreateTable's input for this schema (local mode, tests), its stream on as in
 * AWS; TTL is set apart (UpdateTimeToLive).
 */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, gsi1, streamViewType } = TABLE_SCHEMA
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [partitionKey, sortKey, gsi1.partitionKey, gsi1.sortKey].map((name) => ({
      AttributeName: name,
      AttributeType: 'S',
    })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: gsi1.indexName,
        KeySchema: [
          { AttributeName: gsi1.partitionKey, KeyType: 'HASH' },
          { AttributeName: gsi1.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
    StreamSpecification: { StreamEnabled: true, StreamViewType: streamViewType },
  }
}

/** A table key. */
export type Key = { readonly pk: string; readonly sk: string }
/** An item's place in gsi1. */
export type IndexKey = { readonly gsi1pk: string; readonly gsi1sk: string }

const key = (pk: string, sk: string): Key => ({
  [TABLE_SCHEMA.partitionKey]: pk,
  [TABLE_SCHEMA.sortKey]: sk,
})
const indexKey = (pk: string, sk: string): IndexKey => ({
  [TABLE_SCHEMA.gsi1.partitionKey]: pk,
  [TABLE_SCHEMA.gsi1.sortKey]: sk,
})

/** Partition values, in the table and in gsi1. */
const partition = {
  user: (sub: string) => `USER#${sub}`,
  graceKey: (ref: string) => `GRACEKEY#${ref}`,
  signingKey: (id: string) => `SIGNINGKEY#${id}`,
  username: (username: string) => `USERNAME#${username}`,
  session: (sid: string) => `SESSION#${sid}`,
  event: (id: string) => `EVENT#${id}`,
  dpopKey: (jkt: string) => `DPOP#${jkt}`,
  region: (name: string) => `REGION#${name}`,
}

/** Sort keys that name the kind of item (in `sk`, and in `gsi1sk` where it is indexed). */
const KIND = {
  user: 'USER',
  usernameClaim: 'USERNAME',
  session: 'SESSION',
  failedLogins: 'THROTTLE',
  graceKey: 'GRACEKEY',
  signingKey: 'SIGNINGKEY',
  event: 'EVENT',
  region: 'REGION',
} as const

/** The prefix of a session pointer's `sk` in its user's partition (and of a legacy session's `gsi1sk`). */
export const SESSION_PREFIX = 'SESSION#'

/** The table key of each item. */
export const itemKey = {
  user: (sub: string) => key(partition.user(sub), KIND.user),
  usernameClaim: (username: string) => key(partition.username(username), KIND.usernameClaim),
  session: (sid: string) => key(partition.session(sid), KIND.session),
  /** Lists the session under its user: written once with it, never changed. */
  sessionPointer: (sub: string, sid: string) => key(partition.user(sub), `${SESSION_PREFIX}${sid}`),
  /** A token hash retired from the session: authentic, so its reuse is detected. */
  issuedToken: (sid: string, hash: string) => key(partition.session(sid), `TOKEN#${hash}`),
  /** A grace seal's server key, wrapped by KMS, under the short reference seals carry. */
  graceKey: (ref: string) => key(partition.graceKey(ref), KIND.graceKey),
  /** An envelope signing key's pair (the private key wrapped by KMS), by its `signingKeys` id. */
  signingKey: (id: string) => key(partition.signingKey(id), KIND.signingKey),
  failedLogins: (username: string) => key(partition.username(username), KIND.failedLogins),
  event: (id: string) => key(partition.event(id), KIND.event),
  /** A DPoP proof's `jti` (its SHA-256) under its key's thumbprint: single use per key. */
  dpopProof: (jkt: string, jtiHash: string) => key(partition.dpopKey(jkt), `JTI#${jtiHash}`),
  /** An operator's declaration that a region is lost, or restored (`npm run regions`). */
  region: (name: string) => key(partition.region(name), KIND.region),
}

/** The sort key of every outbox item: what the stream's filter and the forwarder look for. */
export const OUTBOX_SORT_KEY = KIND.event

/**
 * The outbox item's attribute naming the region that wrote it, with several regions: each
 * region's forwarder sends only its own (lib/security-events.ts), so that a replicated
 * outbox item is not forwarded again.
 */
export const OUTBOX_REGION_ATTRIBUTE = 'region'

/** Where each indexed item sits in gsi1. */
export const indexedAt = {
  user: (username: string) => indexKey(partition.username(username), KIND.user),
}

/**
 * Where items written before issue 17 sit in gsi1: a session under its user
 * (newest first: `<created>` is zero-padded epoch ms), a failed-login record
 * under its username. Nothing writes these keys any more; they are read (and
 * listed) until the items expire.
 */
export const legacyIndexedAt = {
  session: (sub: string, createdAt: number, sid: string) =>
    indexKey(partition.user(sub), `${SESSION_PREFIX}${String(createdAt).padStart(15, '0')}#${sid}`),
  failedLogins: (username: string) => indexKey(partition.username(username), KIND.failedLogins),
}

/** The gsi1 partitions the adapters query. */
export const gsi1Partition = {
  /** The user with this username. */
  byUsername: partition.username,
  /** The user's sessions written before issue 17. */
  legacySessionsOf: partition.user,
}

/** The partition of a user's item and of their session pointers. */
export const userPartition = partition.user

/** The TTL attribute's value for an instant in epoch ms. */
export const ttlSeconds = (epochMs: number): number => Math.ceil(epochMs / 1000)

/** `#pk` for condition and update expressions. */
export const PK = { '#pk': TABLE_SCHEMA.partitionKey } as const

/** A put that never overwrites an item: new ids and claims only. */
export const NOT_THERE = {
  ConditionExpression: 'attribute_not_exists(#pk)',
  ExpressionAttributeNames: PK,
} as const
