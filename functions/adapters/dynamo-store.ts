import { createHash } from 'node:crypto'
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb'
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb'
import { OAuthError, TemporarilyUnavailable } from '../core/errors.js'
import type {
  FailedLogins,
  LoginState,
  RefreshState,
  Rotation,
  RotationResult,
  Session,
  SessionState,
  Store,
  User,
  UserStatus,
  UserStore,
} from '../core/ports.js'
import { GSI1 } from './table.js'

const userKey = (sub: string) => ({ pk: `USER#${sub}`, sk: 'USER' })
const usernameKey = (username: string) => ({ pk: `USERNAME#${username}`, sk: 'USERNAME' })
const sessionKey = (sid: string) => ({ pk: `SESSION#${sid}`, sk: 'SESSION' })
const tokenKey = (sid: string, hash: string) => ({ pk: `SESSION#${sid}`, sk: `TOKEN#${hash}` })
const ttl = (epochMs: number) => Math.ceil(epochMs / 1000)

/**
 * The Store and UserStore ports on one DynamoDB table (see `table.ts`). Every
 * read the rules depend on is strongly consistent; every AWS failure becomes a
 * `TemporarilyUnavailable`, and a lost condition becomes a plain result.
 */
export class DynamoStore implements Store, UserStore {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    })
  }

  async findUserByUsername(username: string): Promise<User | undefined> {
    // GSI reads are eventually consistent; createSession re-checks the user as it commits.
    const { Items } = await this.call('Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: GSI1,
          KeyConditionExpression: 'gsi1pk = :name AND gsi1sk = :user',
          ExpressionAttributeValues: { ':name': `USERNAME#${username}`, ':user': 'USER' },
          Limit: 1,
        }),
      ),
    )
    return Items?.[0] ? toUser(Items[0]) : undefined
  }

  async loadRefreshState(key: {
    sub: string
    sid: string
    tokenHash: string
  }): Promise<RefreshState> {
    let pending: Record<string, unknown>[] = [
      userKey(key.sub),
      sessionKey(key.sid),
      tokenKey(key.sid, key.tokenHash),
    ]
    const items: Record<string, unknown>[] = []
    // BatchGet may leave keys unprocessed under load; fetch those again, briefly.
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === 3) throw new TemporarilyUnavailable('dynamodb BatchGet left keys unprocessed')
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 20 * attempt))
      const keys = pending
      const output = await this.call('BatchGet', () =>
        this.doc.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } },
          }),
        ),
      )
      items.push(...(output.Responses?.[this.tableName] ?? []))
      pending = output.UnprocessedKeys?.[this.tableName]?.Keys ?? []
    }
    const user = items.find((item) => item.sk === 'USER')
    const session = items.find((item) => item.sk === 'SESSION')
    return {
      ...(user ? { user: toUser(user) } : {}),
      ...(session ? { session: toSession(session) } : {}),
      tokenIssued: items.some((item) => item.sk === `TOKEN#${key.tokenHash}`),
    }
  }

  async getSession(sid: string): Promise<Session | undefined> {
    const { Item } = await this.call('GetItem', () =>
      this.doc.send(
        new GetCommand({ TableName: this.tableName, Key: sessionKey(sid), ConsistentRead: true }),
      ),
    )
    return Item ? toSession(Item) : undefined
  }

  async createSession(
    session: Session,
    guard: { sub: string; passwordHash: string },
  ): Promise<boolean> {
    try {
      await this.call('TransactWrite', () =>
        this.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.tableName,
                  Item: fromSession(session),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: tokenItem(session.sid, session.currentHash, 0, session),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                // The user is still active and has the password that was checked, and no
                // logout everywhere voids sessions created at this instant.
                ConditionCheck: {
                  TableName: this.tableName,
                  Key: userKey(guard.sub),
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
            ],
          }),
        ),
      )
      return true
    } catch (error) {
      // A logout everywhere committed between the login's clock reading and this
      // write: the session is written after it, so it must not start before it.
      const loggedOutAt = loggedOutOnly(error, guard.passwordHash)
      forgetReturnedItems(error)
      if (loggedOutAt !== undefined) {
        return this.createSession({ ...session, createdAt: loggedOutAt }, guard)
      }
      if (cancelledBy(error, 'ConditionalCheckFailed')) return false
      // Collided with another transaction on the user (a logout everywhere, another login).
      if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) {
        throw new TemporarilyUnavailable('dynamodb TransactWrite collided', { cause: error })
      }
      throw error
    }
  }

  async rotate(rotation: Rotation): Promise<RotationResult> {
    const { sid, expect, next } = rotation
    try {
      await this.call('TransactWrite', () =>
        this.doc.send(
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
                  Key: sessionKey(sid),
                  // Only the holder of the current token at this generation may rotate,
                  // and only while the session is active: exactly one winner, no fork.
                  ConditionExpression:
                    'current_hash = :expected AND generation = :generation AND #status = :active',
                  UpdateExpression:
                    'SET current_hash = :next, previous_hash = :expected, generation = :nextGeneration, ' +
                    'rotated_at = :now, grace_child = :child, last_used_at = :now, ' +
                    'idle_expires_at = :idle, expires_at = :ttl',
                  ExpressionAttributeNames: { '#status': 'status' },
                  ExpressionAttributeValues: {
                    ':expected': expect.currentHash,
                    ':generation': expect.generation,
                    ':active': 'active',
                    ':next': next.currentHash,
                    ':nextGeneration': next.generation,
                    ':now': next.rotatedAt,
                    ':child': next.graceChild,
                    ':idle': next.idleExpiresAt,
                    ':ttl': ttl(next.idleExpiresAt),
                  },
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: tokenItem(sid, next.currentHash, next.generation, {
                    absoluteExpiresAt: rotation.absoluteExpiresAt,
                    createdAt: next.rotatedAt,
                  }),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
            ],
          }),
        ),
      )
      return 'committed'
    } catch (error) {
      // Lost the condition, or collided with a concurrent transaction on the same session.
      if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) return 'lost'
      throw error
    }
  }

  async revokeSession(sid: string, reason: string, at: number): Promise<void> {
    try {
      await this.write('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: sessionKey(sid),
            // Only an existing, active session changes; revoking twice keeps the first reason.
            ConditionExpression: 'attribute_exists(pk) AND #status = :active',
            UpdateExpression:
              'SET #status = :revoked, revoked_reason = :reason, revoked_at = :at REMOVE grace_child',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':active': 'active',
              ':revoked': 'revoked',
              ':reason': reason,
              ':at': at,
            },
          }),
        ),
      )
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return
      throw error
    }
  }

  async listSessions(sub: string): Promise<Session[]> {
    const sessions: Session[] = []
    let cursor: Record<string, unknown> | undefined
    do {
      const page = await this.call('Query', () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: GSI1,
            KeyConditionExpression: 'gsi1pk = :user AND begins_with(gsi1sk, :session)',
            ExpressionAttributeValues: { ':user': `USER#${sub}`, ':session': 'SESSION#' },
            ScanIndexForward: false,
            ExclusiveStartKey: cursor,
          }),
        ),
      )
      sessions.push(...(page.Items ?? []).map(toSession))
      cursor = page.LastEvaluatedKey
    } while (cursor)
    return sessions
  }

  async createUser(user: User): Promise<boolean> {
    try {
      await this.call('TransactWrite', () =>
        this.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                // Claims the username: usernames are unique.
                Put: {
                  TableName: this.tableName,
                  Item: { ...usernameKey(user.username), sub: user.sub },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: fromUser(user),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
            ],
          }),
        ),
      )
      return true
    } catch (error) {
      if (cancelledBy(error, 'ConditionalCheckFailed')) return false
      throw error
    }
  }

  async updateUser(
    sub: string,
    change: { status?: UserStatus; roles?: readonly string[]; sessionsValidAfter?: number },
  ): Promise<void> {
    const sets: string[] = []
    const values: Record<string, unknown> = {}
    if (change.status !== undefined) {
      sets.push('#status = :status')
      values[':status'] = change.status
    }
    if (change.roles !== undefined) {
      sets.push('#roles = :roles')
      values[':roles'] = [...change.roles]
    }
    if (change.sessionsValidAfter !== undefined) {
      sets.push('sessions_valid_after = :after')
      values[':after'] = change.sessionsValidAfter
    }
    if (sets.length === 0) return
    await this.write('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: userKey(sub),
          ConditionExpression: 'attribute_exists(pk)',
          UpdateExpression: `SET ${sets.join(', ')}`,
          // DynamoDB refuses an empty ExpressionAttributeNames (sessionsValidAfter alone).
          ...(change.status !== undefined || change.roles !== undefined
            ? {
                ExpressionAttributeNames: {
                  ...(change.status !== undefined ? { '#status': 'status' } : {}),
                  ...(change.roles !== undefined ? { '#roles': 'roles' } : {}),
                },
              }
            : {}),
          ExpressionAttributeValues: values,
        }),
      ),
    )
  }

  // Login throttling (core/throttle.ts): one record per username, whether or not the
  // user exists, at `USERNAME#<name>` / `THROTTLE` and in gsi1 under the username, so
  // that login's one Query returns it next to the user.

  async loadLogin(username: string): Promise<LoginState> {
    // gsi1 is eventually consistent: the throttle writes below re-check their
    // conditions on the table, and createSession re-checks the user as it commits.
    const { Items = [] } = await this.call('Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: GSI1,
          KeyConditionExpression: 'gsi1pk = :name',
          ExpressionAttributeValues: { ':name': `USERNAME#${username}` },
        }),
      ),
    )
    const user = Items.find((item) => item.gsi1sk === 'USER')
    const failed = Items.find((item) => item.gsi1sk === THROTTLE)
    return {
      ...(user ? { user: toUser(user) } : {}),
      ...(failed ? { failedLogins: toFailedLogins(failed) } : {}),
    }
  }

  async recordLoginFailure(
    username: string,
    at: number,
    forgetBefore: number,
    expiresAt: number,
  ): Promise<void> {
    const values = { ':one': 1, ':at': at, ':forget': forgetBefore, ':ttl': ttl(expiresAt) }
    const update = (condition: string, expression: string, more = {}) =>
      this.write('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: throttleKey(username),
            ConditionExpression: condition,
            UpdateExpression: expression,
            ExpressionAttributeValues: { ...values, ...more },
          }),
        ),
      )
    // Each round either adds to a recent count or restarts a forgotten one; losing
    // both conditions means another failure changed the record in between.
    for (let round = 0; round < 3; round++) {
      try {
        // ADD is atomic, so concurrent failures all count.
        await update(
          'attribute_not_exists(pk) OR last_failed_at > :forget',
          'SET last_failed_at = :at, expires_at = :ttl, gsi1pk = :name, gsi1sk = :throttle ADD failures :one',
          { ':name': `USERNAME#${username}`, ':throttle': THROTTLE },
        )
        return
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error
      }
      try {
        // Old enough to be forgotten (DynamoDB TTL may lag by days): start again.
        await update(
          'last_failed_at <= :forget',
          'SET failures = :one, last_failed_at = :at, expires_at = :ttl',
        )
        return
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error
      }
    }
    throw new TemporarilyUnavailable('failed-login count kept changing')
  }

  async claimLoginAttempt(
    username: string,
    seen: FailedLogins,
    next: FailedLogins,
    expiresAt: number,
  ): Promise<boolean> {
    // Exactly one of several concurrent attempts finds the record as it read it.
    return this.updateFailuresIfUnchanged(
      username,
      seen,
      'SET failures = :next, last_failed_at = :at, expires_at = :ttl',
      { ':next': next.failures, ':at': next.lastFailedAt, ':ttl': ttl(expiresAt) },
    )
  }

  async clearLoginFailures(username: string, seen: FailedLogins): Promise<void> {
    // Failures that landed after `seen` (an attacker racing the user) still count.
    await this.updateFailuresIfUnchanged(username, seen, 'SET failures = :zero', { ':zero': 0 })
  }

  /** Applies `update` to the username's failed-login record only if it is still `seen`. */
  private async updateFailuresIfUnchanged(
    username: string,
    seen: FailedLogins,
    update: string,
    values: Record<string, unknown>,
  ): Promise<boolean> {
    try {
      await this.write('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: throttleKey(username),
            ConditionExpression: 'failures = :seen AND last_failed_at = :seenAt',
            UpdateExpression: update,
            ExpressionAttributeValues: {
              ':seen': seen.failures,
              ':seenAt': seen.lastFailedAt,
              ...values,
            },
          }),
        ),
      )
      return true
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false
      throw error
    }
  }

  /**
   * A single-item write that must land even when a transaction holds its item
   * for a moment (a revoke during a rotation, a logout everywhere during a
   * login): DynamoDB refuses it with TransactionConflictException, which the SDK
   * does not retry, so it is tried again a few times before it becomes a 503.
   */
  private async write<T>(operation: string, send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call(operation, send)
      } catch (error) {
        if (!(error instanceof TransactionConflictException)) throw error
        if (attempt === 3) {
          throw new TemporarilyUnavailable(`dynamodb ${operation} kept colliding`, { cause: error })
        }
        await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 20))
      }
    }
  }

  /** Runs one AWS call; anything but our own errors and lost conditions becomes a 503. */
  private async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send()
    } catch (error) {
      if (error instanceof OAuthError) throw error
      if (error instanceof ConditionalCheckFailedException) throw error
      if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) throw error
      const name = error instanceof Error ? error.name : 'unknown error'
      throw new TemporarilyUnavailable(`dynamodb ${operation} failed: ${name}`, { cause: error })
    }
  }

  /**
   * The authorizer's strict check: the session and its user in one strongly
   * consistent BatchGetItem, so that a revoked session, a logout everywhere
   * (`sessions_valid_after`) and a disabled user are all seen in one round trip.
   */
  async loadSessionState(key: { sub: string; sid: string }): Promise<SessionState> {
    const { Responses, UnprocessedKeys } = await this.call('BatchGet', () =>
      this.doc.send(
        new BatchGetCommand({
          RequestItems: {
            [this.tableName]: {
              Keys: [sessionKey(key.sid), userKey(key.sub)],
              ConsistentRead: true,
            },
          },
        }),
      ),
    )
    // Two small items never exceed BatchGet's limits; leftovers mean throttling.
    if (UnprocessedKeys?.[this.tableName]?.Keys?.length) {
      throw new TemporarilyUnavailable('dynamodb BatchGet left keys unprocessed')
    }
    const items = Responses?.[this.tableName] ?? []
    const user = items.find((item) => item.sk === 'USER')
    const session = items.find((item) => item.sk === 'SESSION')
    return {
      ...(user ? { user: toUser(user) } : {}),
      ...(session ? { session: toSession(session) } : {}),
    }
  }
}

/**
 * True when a transaction was cancelled only for the given reasons (any other
 * reason, such as throttling, is a fault, not a lost race).
 */
function cancelledBy(error: unknown, ...codes: string[]): boolean {
  if (error instanceof TransactionCanceledException) {
    const reasons = (error.CancellationReasons ?? [])
      .map((reason) => reason.Code)
      .filter((code) => code !== undefined && code !== 'None')
    return reasons.length > 0 && reasons.every((code) => codes.includes(code as string))
  }
  // A single-item write that collided with a transaction in progress.
  return (
    codes.includes('TransactionConflict') &&
    error instanceof Error &&
    error.name === 'TransactionConflictException'
  )
}

/**
 * ALL_OLD puts the user item, password hash included, into the cancellation
 * reasons. Drop it once read, so that no error (or its `cause`) carries it.
 */
function forgetReturnedItems(error: unknown): void {
  if (!(error instanceof TransactionCanceledException)) return
  for (const reason of error.CancellationReasons ?? []) delete reason.Item
}

/**
 * The user's `sessions_valid_after` when createSession's transaction failed on
 * that alone (the user still active with the same password), else undefined.
 */
function loggedOutOnly(error: unknown, passwordHash: string): number | undefined {
  if (!(error instanceof TransactionCanceledException)) return undefined
  const reasons = error.CancellationReasons ?? []
  const failed = reasons.filter((reason) => reason.Code !== 'None')
  const user = failed.length === 1 && failed[0] === reasons[2] ? reasons[2]?.Item : undefined
  // The item comes back in DynamoDB's attribute-value form.
  if (user?.status?.S !== 'active' || user.password_hash?.S !== passwordHash) return undefined
  const after = Number(user.sessions_valid_after?.N)
  return Number.isFinite(after) ? after : undefined
}

function fromUser(user: User): Record<string, unknown> {
  return {
    ...userKey(user.sub),
    gsi1pk: `USERNAME#${user.username}`,
    gsi1sk: 'USER',
    sub: user.sub,
    username: user.username,
    password_hash: user.passwordHash,
    roles: [...user.roles],
    status: user.status,
    sessions_valid_after: user.sessionsValidAfter,
    created_at: user.createdAt,
  }
}

function toUser(item: Record<string, unknown>): User {
  return {
    sub: item.sub as string,
    username: item.username as string,
    passwordHash: item.password_hash as string,
    roles: (item.roles as string[] | undefined) ?? [],
    status: item.status === 'active' ? 'active' : 'disabled',
    ...(typeof item.sessions_valid_after === 'number'
      ? { sessionsValidAfter: item.sessions_valid_after }
      : {}),
    createdAt: item.created_at as number,
  }
}

function fromSession(session: Session): Record<string, unknown> {
  return {
    ...sessionKey(session.sid),
    gsi1pk: `USER#${session.sub}`,
    gsi1sk: `SESSION#${String(session.createdAt).padStart(15, '0')}#${session.sid}`,
    sid: session.sid,
    sub: session.sub,
    client_id: session.clientId,
    scope: session.scope,
    status: session.status,
    revoked_reason: session.revokedReason,
    created_at: session.createdAt,
    last_used_at: session.lastUsedAt,
    idle_expires_at: session.idleExpiresAt,
    absolute_expires_at: session.absoluteExpiresAt,
    generation: session.generation,
    current_hash: session.currentHash,
    previous_hash: session.previousHash,
    rotated_at: session.rotatedAt,
    grace_child: session.graceChild,
    user_agent: session.userAgent,
    expires_at: ttl(Math.min(session.idleExpiresAt, session.absoluteExpiresAt)),
  }
}

function toSession(item: Record<string, unknown>): Session {
  const optional = <K extends string>(key: K, value: unknown) =>
    value === undefined ? {} : ({ [key]: value } as Record<K, never>)
  return {
    sid: item.sid as string,
    sub: item.sub as string,
    clientId: item.client_id as string,
    scope: item.scope as string,
    status: item.status === 'active' ? 'active' : 'revoked',
    createdAt: item.created_at as number,
    lastUsedAt: item.last_used_at as number,
    idleExpiresAt: item.idle_expires_at as number,
    absoluteExpiresAt: item.absolute_expires_at as number,
    generation: item.generation as number,
    currentHash: item.current_hash as string,
    ...optional('revokedReason', item.revoked_reason),
    ...optional('previousHash', item.previous_hash),
    ...optional('rotatedAt', item.rotated_at),
    ...optional('graceChild', item.grace_child),
    ...optional('userAgent', item.user_agent),
  }
}

/** A record that this hash was issued for this session: lets a retired token be recognised. */
function tokenItem(
  sid: string,
  hash: string,
  generation: number,
  session: { absoluteExpiresAt: number; createdAt: number },
): Record<string, unknown> {
  return {
    ...tokenKey(sid, hash),
    generation,
    issued_at: session.createdAt,
    expires_at: ttl(session.absoluteExpiresAt),
  }
}

const THROTTLE = 'THROTTLE'
const throttleKey = (username: string) => ({ pk: `USERNAME#${username}`, sk: THROTTLE })

function toFailedLogins(item: Record<string, unknown>): FailedLogins {
  return {
    failures: typeof item.failures === 'number' ? item.failures : 0,
    lastFailedAt: typeof item.last_failed_at === 'number' ? item.last_failed_at : 0,
  }
}
