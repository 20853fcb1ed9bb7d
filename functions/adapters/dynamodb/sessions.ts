/**
 * The SessionStore port on DynamoDB (docs/design.md "Storage" and "Sessions,
 * rotation, reuse"): sessions, their issued-token records, and the reads
 * that pair a session with its user. The rules (rotation, grace, reuse,
 * expiry, the logout-versus-login decision) live in functions/core; this
 * file maps items and conditions only. Reads the rules depend on are
 * strongly consistent; retries follow retry.ts.
 */
import { createHash } from 'node:crypto'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb'
import { TemporarilyUnavailable } from '../../core/errors.js'
import type {
  RefreshState,
  Rotation,
  RotationResult,
  Session,
  SessionCreation,
  SessionState,
  SessionStore,
} from '../../core/ports.js'
import type { RevocationReason, SecurityEvent } from '../../core/security-events.js'
import {
  documentClient,
  type Item,
  issuedTokenItem,
  sessionItem,
  userItem,
  withKey,
} from './items.js'
import { eventPuts, updateWithEvents } from './outbox.js'
import { AGAIN, cancellationReasons, cancelledBy, withRetry } from './retry.js'
import {
  GSI1,
  gsi1Partition,
  itemKey,
  type Key,
  NOT_THERE,
  PK,
  SESSION_PREFIX,
  TABLE_SCHEMA,
  ttlSeconds,
} from './table.js'

const TTL = { '#ttl': TABLE_SCHEMA.ttlAttribute }

export class DynamoSessions implements SessionStore {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async loadRefreshState(key: {
    sub: string
    sid: string
    tokenHash: string
  }): Promise<RefreshState> {
    const token = itemKey.issuedToken(key.sid, key.tokenHash)
    const items = await this.batchGet([itemKey.user(key.sub), itemKey.session(key.sid), token])
    const user = withKey(items, itemKey.user(key.sub))
    const session = withKey(items, itemKey.session(key.sid))
    return {
      ...(user ? { user: userItem.fromItem(user) } : {}),
      ...(session ? { session: sessionItem.fromItem(session) } : {}),
      tokenIssued: withKey(items, token) !== undefined,
    }
  }

  /**
   * The strict authorizer's check and the sessions API's view of the user:
   * the session and its user in one strongly consistent BatchGetItem, so that
   * a revoked session, a logout everywhere (`sessions_valid_after`) and a
   * disabled user are all seen in one round trip.
   */
  async loadSessionState(key: { sub: string; sid: string }): Promise<SessionState> {
    const items = await this.batchGet([itemKey.session(key.sid), itemKey.user(key.sub)])
    const user = withKey(items, itemKey.user(key.sub))
    const session = withKey(items, itemKey.session(key.sid))
    return {
      ...(user ? { user: userItem.fromItem(user) } : {}),
      ...(session ? { session: sessionItem.fromItem(session) } : {}),
    }
  }

  async getSession(sid: string): Promise<Session | undefined> {
    const { Item } = await withRetry('GetItem', () =>
      this.doc.send(
        new GetCommand({
          TableName: this.tableName,
          Key: itemKey.session(sid),
          ConsistentRead: true,
        }),
      ),
    )
    return Item ? sessionItem.fromItem(Item) : undefined
  }

  async createSession(
    session: Session,
    guard: { sub: string; passwordHash: string },
    events: readonly SecurityEvent[] = [],
  ): Promise<SessionCreation> {
    return withRetry('TransactWriteItems', () =>
      this.doc
        .send(
          new TransactWriteCommand({
            TransactItems: [
              // A new session id and token hash: never overwrite an item.
              {
                Put: { TableName: this.tableName, Item: sessionItem.toItem(session), ...NOT_THERE },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: issuedTokenItem.toItem({
                    sid: session.sid,
                    hash: session.currentHash,
                    generation: 0,
                    issuedAt: session.createdAt,
                    absoluteExpiresAt: session.absoluteExpiresAt,
                  }),
                  ...NOT_THERE,
                },
              },
              {
                // The user is still active with the password that was checked, and no
                // logout everywhere voids a session created at this instant
                // (core/users.ts voidedByUser). The user comes back when this fails.
                ConditionCheck: {
                  TableName: this.tableName,
                  Key: itemKey.user(guard.sub),
                  ConditionExpression:
                    '#status = :active AND password_hash = :hash AND ' +
                    '(attribute_not_exists(sessions_valid_after) OR sessions_valid_after <= :created)',
                  ExpressionAttributeNames: { '#status': 'status' },
                  ExpressionAttributeValues: {
                    ':active': 'active',
                    ':hash': guard.passwordHash,
                    ':created': session.createdAt,
                  },
                  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
                },
              },
              // After the guard: `refusal` reads the reasons by position.
              ...eventPuts(this.tableName, events),
            ],
          }),
        )
        .then((): SessionCreation => ({ created: true }), refusal),
    )
  }

  async rotate(rotation: Rotation): Promise<RotationResult> {
    const { sid, expect, next } = rotation
    return withRetry('TransactWriteItems', () =>
      this.doc
        .send(
          new TransactWriteCommand({
            // Makes the SDK's own retry of a committed rotation succeed instead of
            // failing its condition (and looking like someone else rotated).
            ClientRequestToken: createHash('sha256')
              .update(next.currentHash)
              .digest('hex')
              .slice(0, 36),
            TransactItems: [
              {
                Update: {
                  TableName: this.tableName,
                  Key: itemKey.session(sid),
                  // Only the holder of the current token at this generation may rotate,
                  // and only while the session is active: exactly one winner, no fork.
                  ConditionExpression:
                    'current_hash = :expected AND generation = :generation AND #status = :active',
                  UpdateExpression:
                    'SET current_hash = :next, previous_hash = :expected, generation = :nextGeneration, ' +
                    'rotated_at = :now, grace_child = :child, last_used_at = :now, ' +
                    'idle_expires_at = :idle, #ttl = :ttl',
                  ExpressionAttributeNames: { '#status': 'status', ...TTL },
                  ExpressionAttributeValues: {
                    ':expected': expect.currentHash,
                    ':generation': expect.generation,
                    ':active': 'active',
                    ':next': next.currentHash,
                    ':nextGeneration': next.generation,
                    ':now': next.rotatedAt,
                    ':child': next.graceChild,
                    ':idle': next.idleExpiresAt,
                    ':ttl': ttlSeconds(next.idleExpiresAt),
                  },
                },
              },
              {
                // A new token hash: never overwrites the record of an earlier one.
                Put: {
                  TableName: this.tableName,
                  Item: issuedTokenItem.toItem({
                    sid,
                    hash: next.currentHash,
                    generation: next.generation,
                    issuedAt: next.rotatedAt,
                    absoluteExpiresAt: rotation.absoluteExpiresAt,
                  }),
                  ConditionExpression: 'attribute_not_exists(#pk)',
                  ExpressionAttributeNames: PK,
                },
              },
            ],
          }),
        )
        .then(
          (): RotationResult => 'committed',
          (error: unknown) => {
            // Lost the condition, or collided with a concurrent transaction on the session:
            // either way refresh reads the session again and answers as it finds it.
            if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) return 'lost'
            throw error
          },
        ),
    )
  }

  revokeSession(
    sid: string,
    reason: RevocationReason,
    at: number,
    events: readonly SecurityEvent[] = [],
  ): Promise<boolean> {
    return updateWithEvents(
      this.doc,
      {
        TableName: this.tableName,
        Key: itemKey.session(sid),
        // Only an existing, active session changes: revoking twice keeps the first
        // reason (and writes the events once), and a missing session is not created.
        ConditionExpression: 'attribute_exists(#pk) AND #status = :active',
        UpdateExpression:
          'SET #status = :revoked, revoked_reason = :reason, revoked_at = :at REMOVE grace_child',
        ExpressionAttributeNames: { ...PK, '#status': 'status' },
        ExpressionAttributeValues: {
          ':active': 'active',
          ':revoked': 'revoked',
          ':reason': reason,
          ':at': at,
        },
      },
      events,
    )
  }

  async listSessions(sub: string): Promise<Session[]> {
    const { gsi1 } = TABLE_SCHEMA
    const sessions: Session[] = []
    let cursor: Record<string, unknown> | undefined
    do {
      const page = await withRetry('Query', () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: GSI1,
            KeyConditionExpression: '#gpk = :user AND begins_with(#gsk, :session)',
            ExpressionAttributeNames: { '#gpk': gsi1.partitionKey, '#gsk': gsi1.sortKey },
            ExpressionAttributeValues: {
              ':user': gsi1Partition.sessionsOf(sub),
              ':session': SESSION_PREFIX,
            },
            // Newest first: the sort key starts with the creation time.
            ScanIndexForward: false,
            ExclusiveStartKey: cursor,
          }),
        ),
      )
      sessions.push(...(page.Items ?? []).map(sessionItem.fromItem))
      cursor = page.LastEvaluatedKey
    } while (cursor)
    return sessions
  }

  /** A strongly consistent BatchGetItem; keys it leaves unprocessed are fetched again (retry.ts). */
  private async batchGet(keys: readonly Key[]): Promise<Item[]> {
    const items: Item[] = []
    let pending: Record<string, unknown>[] = [...keys]
    await withRetry('BatchGetItem', async () => {
      const output = await this.doc.send(
        new BatchGetCommand({
          RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } },
        }),
      )
      items.push(...(output.Responses?.[this.tableName] ?? []))
      pending = output.UnprocessedKeys?.[this.tableName]?.Keys ?? []
      return pending.length > 0 ? AGAIN : undefined
    })
    return items
  }
}

/**
 * What a cancelled createSession means. The user as the guard found it comes
 * back when the guard alone failed (the only case core/users.ts
 * `startAfterLogout` looks at). ALL_OLD puts that item, password hash
 * included, into the cancellation reasons: every returned item is dropped
 * before anything is thrown, so that no error (or its `cause`) carries a hash.
 */
function refusal(error: unknown): SessionCreation {
  const reasons = cancellationReasons(error) ?? []
  const failed = reasons.filter((reason) => reason.Code !== 'None')
  const guard = reasons[2]
  const found =
    failed.length === 1 && guard?.Code === 'ConditionalCheckFailed' && guard.Item
      ? userItem.fromAttributeValues(guard.Item)
      : undefined
  for (const reason of reasons) delete reason.Item
  if (cancelledBy(error, 'ConditionalCheckFailed')) {
    return { created: false, ...(found ? { user: found } : {}) }
  }
  // Collided with another transaction on the user (a logout everywhere, another login).
  if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) {
    throw new TemporarilyUnavailable('dynamodb TransactWriteItems collided', { cause: error })
  }
  throw error
}
