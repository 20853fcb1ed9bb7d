/**
 * The UserStore port on DynamoDB (docs/design.md "Storage"): users, found by
 * username through gsi1, and the username claims that keep usernames unique.
 * The rules (who may log in, what voids a session) live in functions/core;
 * this file maps items and conditions only. Retries follow retry.ts.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb'
import type {
  PasswordChange,
  PasswordChangeResult,
  Session,
  User,
  UserStatus,
  UserStore,
} from '../../core/ports.js'
import type { SecurityEvent } from '../../core/security-events.js'
import { documentClient, userItem, usernameClaimItem } from './items.js'
import { updateWithEvents } from './outbox.js'
import { cancelledBy, withRetry } from './retry.js'
import { GSI1, gsi1Partition, indexedAt, itemKey, NOT_THERE, PK, TABLE_SCHEMA } from './table.js'

export class DynamoUsers implements UserStore {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async findUserByUsername(username: string): Promise<User | undefined> {
    const { gsi1 } = TABLE_SCHEMA
    // gsi1 is eventually consistent: createSession re-checks the user as it commits.
    const { Items } = await withRetry('Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: GSI1,
          KeyConditionExpression: '#gpk = :name AND #gsk = :user',
          ExpressionAttributeNames: { '#gpk': gsi1.partitionKey, '#gsk': gsi1.sortKey },
          ExpressionAttributeValues: {
            ':name': gsi1Partition.byUsername(username),
            ':user': indexedAt.user(username).gsi1sk,
          },
          Limit: 1,
        }),
      ),
    )
    return Items?.[0] ? userItem.fromItem(Items[0]) : undefined
  }

  async createUser(user: User): Promise<boolean> {
    return withRetry('TransactWriteItems', () =>
      this.doc
        .send(
          new TransactWriteCommand({
            TransactItems: [
              // Claims the username: usernames are unique, whatever the sub.
              {
                Put: {
                  TableName: this.tableName,
                  Item: usernameClaimItem.toItem(user),
                  ...NOT_THERE,
                },
              },
              { Put: { TableName: this.tableName, Item: userItem.toItem(user), ...NOT_THERE } },
            ],
          }),
        )
        .then(
          () => true,
          (error: unknown) => {
            if (cancelledBy(error, 'ConditionalCheckFailed')) return false
            throw error
          },
        ),
    )
  }

  async updateUser(
    sub: string,
    change: {
      status?: UserStatus
      roles?: readonly string[]
      sessionsValidAfter?: number
      whileLive?: Pick<Session, 'sid' | 'createdAt'>
    },
    events: readonly SecurityEvent[] = [],
  ): Promise<boolean> {
    const sets: string[] = []
    const names: Record<string, string> = { ...PK }
    const values: Record<string, unknown> = {}
    if (change.status !== undefined) {
      sets.push('#status = :status')
      names['#status'] = 'status'
      values[':status'] = change.status
    }
    if (change.roles !== undefined) {
      sets.push('#roles = :roles')
      names['#roles'] = 'roles'
      values[':roles'] = [...change.roles]
    }
    if (change.sessionsValidAfter !== undefined) {
      sets.push('sessions_valid_after = :after')
      values[':after'] = change.sessionsValidAfter
    }
    if (sets.length === 0) return true
    const { whileLive } = change
    if (whileLive) {
      names['#status'] = 'status'
      values[':active'] = 'active'
      values[':created'] = whileLive.createdAt
      values[':sid'] = whileLive.sid
    }
    return updateWithEvents(
      this.doc,
      {
        TableName: this.tableName,
        Key: itemKey.user(sub),
        // Changes an existing user only: an update never creates a half user. With
        // `whileLive`, also only while that session lives (core/users.ts voidedByUser), as
        // changePassword's kept session: a cut after another cut finds it voided.
        ConditionExpression: whileLive
          ? 'attribute_exists(#pk) AND #status = :active AND ' +
            '(attribute_not_exists(sessions_valid_after) OR sessions_valid_after <= :created ' +
            'OR kept_session = :sid)'
          : 'attribute_exists(#pk)',
        // A new cut spares no session: the one a password change kept goes with the rest.
        UpdateExpression:
          change.sessionsValidAfter === undefined
            ? `SET ${sets.join(', ')}`
            : `SET ${sets.join(', ')} REMOVE kept_session`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      events,
    )
  }

  async changePassword(
    change: PasswordChange,
    events: readonly SecurityEvent[] = [],
  ): Promise<PasswordChangeResult> {
    const { keep } = change
    const key = itemKey.user(change.sub)
    // The events commit in the same transaction as the hash, or not at all.
    const changed = await updateWithEvents(
      this.doc,
      {
        TableName: this.tableName,
        Key: key,
        // Only over the hash that was checked: a concurrent change is never overwritten.
        // With a kept session, also only while the user is active and no logout everywhere
        // voids that session (core/users.ts voidedByUser), so a voided one is never revived.
        ConditionExpression: keep
          ? 'password_hash = :expected AND #status = :active AND ' +
            '(attribute_not_exists(sessions_valid_after) OR sessions_valid_after <= :created ' +
            'OR kept_session = :sid)'
          : 'password_hash = :expected',
        UpdateExpression: keep
          ? 'SET password_hash = :hash, sessions_valid_after = :after, kept_session = :sid'
          : 'SET password_hash = :hash, sessions_valid_after = :after REMOVE kept_session',
        ...(keep ? { ExpressionAttributeNames: { '#status': 'status' } } : {}),
        ExpressionAttributeValues: {
          ':expected': change.expectHash,
          ':hash': change.newHash,
          ':after': change.sessionsValidAfter,
          ...(keep ? { ':active': 'active', ':created': keep.createdAt, ':sid': keep.sid } : {}),
        },
      },
      events,
    )
    if (changed) return 'changed'
    // The SDK's own retry of a change that committed meets its own condition: the new hash
    // (a fresh salt, so no other change has it) tells the two apart.
    const { Item } = await withRetry('GetItem', () =>
      this.doc.send(
        new GetCommand({
          TableName: this.tableName,
          Key: key,
          ProjectionExpression: 'password_hash',
          ConsistentRead: true,
        }),
      ),
    )
    return Item?.password_hash === change.newHash ? 'changed' : 'refused'
  }
}
