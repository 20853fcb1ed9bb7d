/**
 * The SessionStore port on DynamoDB (docs/design.md "Storage" and "Sessions,
 * rotation, reuse"): sessions, their pointers, their retired-token records,
 * and the reads that pair a session with its user. The rules (rotation,
 * grace, reuse, expiry, the logout-versus-login decision) live in
 * functions/core; this file maps items and conditions only. Reads the rules
 * depend on are strongly consistent; retries follow retry.ts.
 *
 * What each warm call costs (docs/capacity.md): a refresh reads two items and
 * writes two small ones, the retired token's record, then the session, with
 * no transaction and no index; a login writes the session in one transaction
 * with its guard and its event, then its pointer.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
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
  sessionPointerItem,
  userItem,
  withKey,
} from './items.js'
import { eventPuts, updateWithEvents } from './outbox.js'
import {
  AGAIN,
  cancellationReasons,
  cancelledBy,
  conditionFailed,
  NamedItems,
  withRetry,
} from './retry.js'
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
  userPartition,
} from './table.js'

const TTL = { '#ttl': TABLE_SCHEMA.ttlAttribute }

/** BatchGetItem's limit of keys per request. */
const BATCH_GET_KEYS = 100

export class DynamoSessions implements SessionStore {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  loadRefreshState(key: { sub: string; sid: string }): Promise<RefreshState> {
    return this.sessionAndUser(key)
  }

  async wasRetired(sid: string, tokenHash: string): Promise<boolean> {
    const { Item } = await withRetry('GetItem', () =>
      this.doc.send(
        new GetCommand({
          TableName: this.tableName,
          Key: itemKey.issuedToken(sid, tokenHash),
          ConsistentRead: true,
          // Only its existence matters.
          ProjectionExpression: '#pk',
          ExpressionAttributeNames: PK,
        }),
      ),
    )
    return Item !== undefined
  }

  /**
   * The strict authorizer's check, the sessions API's view of the user and
   * refresh's first read: the session and its user in one strongly consistent
   * BatchGetItem, so that a revoked session, a logout everywhere
   * (`sessions_valid_after`) and a disabled user are all seen in one round trip.
   */
  loadSessionState(key: { sub: string; sid: string }): Promise<SessionState> {
    return this.sessionAndUser(key)
  }

  private async sessionAndUser(key: { sub: string; sid: string }): Promise<SessionState> {
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
    const transaction = new NamedItems<'session' | 'guard' | 'event', Record<string, unknown>>()
      // A new session id: never overwrite an item.
      .add('session', {
        Put: { TableName: this.tableName, Item: sessionItem.toItem(session), ...NOT_THERE },
      })
      .add('guard', {
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
      })
      .add('event', ...eventPuts(this.tableName, events))
    const creation = await withRetry('TransactWriteItems', () =>
      this.doc
        .send(new TransactWriteCommand({ TransactItems: transaction.items }))
        .then((): SessionCreation => ({ created: true }), refusal(transaction)),
    )
    // Listed under its user once it exists: a pointer never names a session that was refused.
    // If this fails the session exists unlisted, and the caller revokes it (core/login.ts).
    if (creation.created) {
      await withRetry('PutItem', () =>
        this.doc.send(
          new PutCommand({ TableName: this.tableName, Item: sessionPointerItem.toItem(session) }),
        ),
      )
    }
    return creation
  }

  async recordRetired(rotation: Rotation): Promise<void> {
    const { sid, retired } = rotation
    // A record per retired hash: writing it again (a retry, a racing rotation of the
    // same token) writes the same item.
    await withRetry('PutItem', () =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: issuedTokenItem.toItem({
            sid,
            hash: retired.hash,
            generation: retired.generation,
            issuedAt: retired.issuedAt,
            absoluteExpiresAt: rotation.absoluteExpiresAt,
          }),
        }),
      ),
    )
  }

  async rotate(rotation: Rotation): Promise<RotationResult> {
    const { sid, expect, next } = rotation
    const home = homeCondition(rotation)
    return withRetry('UpdateItem', () =>
      this.doc
        .send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: itemKey.session(sid),
            // Only the holder of the current token at this generation may rotate, and only
            // while the session is active: exactly one winner, no fork. The second branch
            // is this very rotation already applied (the SDK sending it again after a lost
            // answer): the child's hash is fresh randomness no one else has. With several
            // regions, each branch also holds the item's home as it was (or, applied, as the
            // adoption left it): a region decides only the sessions the item homes there.
            ConditionExpression:
              '#status = :active AND (' +
              `(current_hash = :expected AND generation = :generation${home.before}) OR ` +
              `(current_hash = :next AND previous_hash = :expected AND generation = :nextGeneration${home.after}))`,
            UpdateExpression:
              'SET current_hash = :next, previous_hash = :expected, generation = :nextGeneration, ' +
              `rotated_at = :now, grace_child = :child, last_used_at = :now, ${home.set}` +
              'idle_expires_at = :idle, #ttl = :ttl',
            ExpressionAttributeNames: { '#status': 'status', ...TTL, ...home.names },
            ExpressionAttributeValues: {
              ':expected': expect.currentHash,
              ':generation': expect.generation,
              ':active': 'active',
              ':next': next.currentHash,
              ':nextGeneration': next.generation,
              ':now': next.rotatedAt,
              ':child': next.sealedSuccessor,
              ':idle': next.idleExpiresAt,
              ':ttl': ttlSeconds(next.idleExpiresAt),
              ...home.values,
            },
            // The session as the condition found it: refresh answers from it (rule 4).
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        )
        .then(
          (): RotationResult => ({ committed: true }),
          (error: unknown): RotationResult => {
            if (!conditionFailed(error)) throw error
            const found = (error as { Item?: Record<string, AttributeValue> }).Item
            return found
              ? { committed: false, session: sessionItem.fromItem(unmarshall(found)) }
              : { committed: false }
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

  /**
   * The user's pointers (strongly consistent), then their sessions; and the
   * sessions written before issue 17, which gsi1 lists (eventually consistent)
   * until they expire. Newest first.
   */
  async listSessions(sub: string): Promise<Session[]> {
    const { partitionKey, sortKey, gsi1 } = TABLE_SCHEMA
    const [pointers, legacy] = await Promise.all([
      this.queryAll({
        KeyConditionExpression: '#pk = :user AND begins_with(#sk, :session)',
        ExpressionAttributeNames: { '#pk': partitionKey, '#sk': sortKey },
        ExpressionAttributeValues: { ':user': userPartition(sub), ':session': SESSION_PREFIX },
        ConsistentRead: true,
      }),
      this.queryAll({
        IndexName: GSI1,
        KeyConditionExpression: '#gpk = :user AND begins_with(#gsk, :session)',
        ExpressionAttributeNames: { '#gpk': gsi1.partitionKey, '#gsk': gsi1.sortKey },
        ExpressionAttributeValues: {
          ':user': gsi1Partition.legacySessionsOf(sub),
          ':session': SESSION_PREFIX,
        },
      }),
    ])
    const sessions = new Map<string, Session>()
    for (const item of legacy) {
      const session = sessionItem.fromItem(item)
      sessions.set(session.sid, session)
    }
    const listed = await this.batchGet(
      pointers.map((pointer) => itemKey.session(sessionPointerItem.sidOf(pointer))),
    )
    for (const item of listed) {
      const session = sessionItem.fromItem(item)
      // A pointer in someone else's partition names none of their sessions.
      if (session.sub === sub) sessions.set(session.sid, session)
    }
    return [...sessions.values()].sort(
      (a, b) => b.createdAt - a.createdAt || a.sid.localeCompare(b.sid),
    )
  }

  /** Every page of a Query on the table or gsi1. */
  private async queryAll(query: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const found: Item[] = []
    let cursor: Record<string, unknown> | undefined
    do {
      const page = await withRetry('Query', () =>
        this.doc.send(
          new QueryCommand({ TableName: this.tableName, ...query, ExclusiveStartKey: cursor }),
        ),
      )
      found.push(...(page.Items ?? []))
      cursor = page.LastEvaluatedKey
    } while (cursor)
    return found
  }

  /**
   * Strongly consistent BatchGetItems of up to 100 keys each; keys left
   * unprocessed are fetched again (retry.ts).
   */
  private async batchGet(keys: readonly Key[]): Promise<Item[]> {
    const items: Item[] = []
    for (let start = 0; start < keys.length; start += BATCH_GET_KEYS) {
      let pending: Record<string, unknown>[] = keys.slice(start, start + BATCH_GET_KEYS)
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
    }
    return items
  }
}

/**
 * The parts of a rotation's expressions about its session's home (several regions): the
 * home as read (`attribute_not_exists` for a session of the primary, which names none),
 * and, for an adoption, the new home, epoch and generation adopted at.
 */
function homeCondition(rotation: Rotation): {
  before: string
  after: string
  set: string
  names: Record<string, string>
  values: Record<string, unknown>
} {
  const none = { before: '', after: '', set: '', names: {}, values: {} }
  if (!rotation.home) return none
  const { expected, adopt } = rotation.home
  const was = expected === undefined ? 'attribute_not_exists(#home)' : '#home = :home'
  const values: Record<string, unknown> = expected === undefined ? {} : { ':home': expected }
  if (!adopt) {
    return {
      ...none,
      before: ` AND ${was}`,
      after: ` AND ${was}`,
      names: { '#home': 'home' },
      values,
    }
  }
  return {
    before: ` AND ${was}`,
    after: ' AND #home = :adopter AND #epoch = :epoch',
    set: '#home = :adopter, #epoch = :epoch, adopted_at = :adoptedAt, ',
    names: { '#home': 'home', '#epoch': 'epoch' },
    values: {
      ...values,
      ':adopter': adopt.home,
      ':epoch': adopt.epoch,
      ':adoptedAt': adopt.adoptedAt,
    },
  }
}

/**
 * What a cancelled createSession means. The user as the guard found it comes
 * back when the guard alone failed (the only case core/users.ts
 * `startAfterLogout` looks at). ALL_OLD puts that item, password hash
 * included, into the cancellation reasons: every returned item is dropped
 * before anything is thrown, so that no error (or its `cause`) carries a hash.
 */
function refusal(transaction: NamedItems<'session' | 'guard' | 'event', unknown>) {
  return (error: unknown): SessionCreation => {
    const [guard] = transaction.reasons(error, 'guard')
    const others = [
      ...transaction.reasons(error, 'session'),
      ...transaction.reasons(error, 'event'),
    ].filter((reason) => reason.Code !== 'None')
    const found =
      others.length === 0 && guard?.Code === 'ConditionalCheckFailed' && guard.Item
        ? userItem.fromAttributeValues(guard.Item)
        : undefined
    for (const reason of cancellationReasons(error) ?? []) delete reason.Item
    if (cancelledBy(error, 'ConditionalCheckFailed')) {
      return { created: false, ...(found ? { user: found } : {}) }
    }
    // Collided with another transaction on the user (a logout everywhere, another login).
    if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) {
      throw new TemporarilyUnavailable('dynamodb TransactWriteItems collided', { cause: error })
    }
    throw error
  }
}
