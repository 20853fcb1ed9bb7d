/**
 * The LoginAttempts port on DynamoDB (docs/design.md "Storage" and "HTTP
 * API": 429 with `Retry-After`): login's one read and the per-username
 * failed-login record. The back-off rules (window, doubling, cap, one attempt
 * per period) live in core/throttle.ts; this file maps items and conditions
 * only. Retries follow retry.ts.
 *
 * One record per username, whether or not the user exists, at
 * `USERNAME#<name>` / `THROTTLE`, read and written by its key only: the turn's
 * conditional update returns it when it decides. It is in no index, so that
 * each of a login's two writes to it (the turn, and the success taking it
 * back) costs one write unit. A record written before issue 17 sits in gsi1
 * (table.ts `legacyIndexedAt`); every update below removes its index keys, so
 * it leaves the index at its next write.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import type {
  FailedLogins,
  FreeTurn,
  LoginAttempts,
  LoginCount,
  LoginFailure,
  LoginState,
} from '../../core/ports.js'
import type { SecurityEvent } from '../../core/security-events.js'
import { documentClient, failedLoginsItem, userItem } from './items.js'
import { sendUpdate } from './outbox.js'
import { AGAIN, conditionFailed, withRetry } from './retry.js'
import { GSI1, gsi1Partition, indexedAt, itemKey, TABLE_SCHEMA, ttlSeconds } from './table.js'

/** Takes a record written before issue 17 out of gsi1 (a no-op for any other). */
const OUT_OF_THE_INDEX = 'REMOVE #gpk, #gsk'
const INDEX_KEYS = {
  '#gpk': TABLE_SCHEMA.gsi1.partitionKey,
  '#gsk': TABLE_SCHEMA.gsi1.sortKey,
}

export class DynamoLoginThrottle implements LoginAttempts {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async loadLogin(username: string): Promise<LoginState> {
    const { gsi1 } = TABLE_SCHEMA
    // gsi1 is eventually consistent: the throttle writes re-check their conditions
    // on the table, and createSession re-checks the user as it commits.
    const { Items = [] } = await withRetry('Query', () =>
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
        }),
      ),
    )
    const user = Items[0]
    return user ? { user: userItem.fromItem(user) } : {}
  }

  async recordLoginFailure(
    username: string,
    failure: LoginFailure,
    events: readonly SecurityEvent[] = [],
  ): Promise<void> {
    // Both updates name every attribute and value below: DynamoDB refuses unused ones.
    const update = (condition: string, expression: string) =>
      sendUpdate(
        this.doc,
        {
          TableName: this.tableName,
          Key: itemKey.failedLogins(username),
          ConditionExpression: condition,
          UpdateExpression: expression,
          ExpressionAttributeNames: {
            '#pk': TABLE_SCHEMA.partitionKey,
            '#ttl': TABLE_SCHEMA.ttlAttribute,
            ...INDEX_KEYS,
          },
          ExpressionAttributeValues: {
            ':one': 1,
            ':at': failure.at,
            ':forget': failure.forgetBefore,
            ':ttl': ttlSeconds(failure.expiresAt),
          },
        },
        events,
      )
    await withRetry(events.length ? 'TransactWriteItems' : 'UpdateItem', async () => {
      // A new record, or a count still within the window (core/throttle.ts failureAt):
      // add one. ADD is atomic, so concurrent failures all count.
      const added = await update(
        'attribute_not_exists(#pk) OR last_failed_at > :forget',
        `SET last_failed_at = :at, #ttl = :ttl ${OUT_OF_THE_INDEX} ADD failures :one`,
      )
      if (added !== false) return added === AGAIN ? AGAIN : undefined
      // A count old enough to be forgotten (DynamoDB TTL may lag by days): start again at 1.
      const restarted = await update(
        'attribute_exists(#pk) AND last_failed_at <= :forget',
        `SET failures = :one, last_failed_at = :at, #ttl = :ttl ${OUT_OF_THE_INDEX}`,
      )
      if (restarted === true) return
      // Lost both: another failure changed the record in between. Decide again.
      return AGAIN
    })
  }

  async countLoginAttempt(username: string, turn: FreeTurn): Promise<LoginCount> {
    return withRetry('UpdateItem', () =>
      this.doc
        .send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: itemKey.failedLogins(username),
            // A free turn (core/throttle.ts freeTurn): no record yet, or fewer than
            // :free failures within the window. ADD is atomic, so of concurrent
            // attempts exactly as many win as there are free failures left.
            ConditionExpression:
              'attribute_not_exists(#pk) OR (last_failed_at > :forget AND failures < :free)',
            UpdateExpression: `SET last_failed_at = :at, #ttl = :ttl ${OUT_OF_THE_INDEX} ADD failures :one`,
            ExpressionAttributeNames: {
              '#pk': TABLE_SCHEMA.partitionKey,
              '#ttl': TABLE_SCHEMA.ttlAttribute,
              ...INDEX_KEYS,
            },
            ExpressionAttributeValues: {
              ':one': 1,
              ':at': turn.at,
              ':forget': turn.forgetBefore,
              ':free': turn.freeFailures,
              ':ttl': ttlSeconds(turn.expiresAt),
            },
            ReturnValues: 'ALL_NEW',
            // No free turn: the record as the condition found it decides what comes next.
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        )
        .then(
          ({ Attributes = {} }): LoginCount => ({
            counted: true,
            state: failedLoginsItem.fromItem(Attributes),
          }),
          (error: unknown): LoginCount => {
            if (!conditionFailed(error)) throw error
            const found = (error as { Item?: Record<string, AttributeValue> }).Item ?? {}
            return { counted: false, state: failedLoginsItem.fromItem(unmarshall(found)) }
          },
        ),
    )
  }

  async claimLoginAttempt(
    username: string,
    seen: FailedLogins,
    next: FailedLogins,
    expiresAt: number,
  ): Promise<boolean> {
    // Exactly one of several concurrent attempts finds the record as it read it.
    return this.updateIfUnchanged(username, seen, {
      UpdateExpression: `SET failures = :next, last_failed_at = :at, #ttl = :ttl ${OUT_OF_THE_INDEX}`,
      ExpressionAttributeNames: { '#ttl': TABLE_SCHEMA.ttlAttribute, ...INDEX_KEYS },
      ExpressionAttributeValues: {
        ':next': next.failures,
        ':at': next.lastFailedAt,
        ':ttl': ttlSeconds(expiresAt),
      },
    })
  }

  async clearLoginFailures(username: string, seen: FailedLogins): Promise<void> {
    // The one write that forgets failures; `resets` tells later take-backs it happened.
    const cleared = await this.updateIfUnchanged(username, seen, {
      UpdateExpression: `SET failures = :zero ${OUT_OF_THE_INDEX} ADD resets :one`,
      ExpressionAttributeNames: INDEX_KEYS,
      ExpressionAttributeValues: { ':zero': 0, ':one': 1 },
    })
    if (cleared) return
    // Failures that landed after `seen` (an attacker racing the user) still count:
    // take back only this attempt's own, counted when it took its turn.
    await this.takeBackOne(username, seen)
  }

  async giveBackLoginAttempt(username: string, turn: FailedLogins): Promise<void> {
    await this.takeBackOne(username, turn)
  }

  /**
   * Subtracts the one count an attempt's turn added (`turn`, as it wrote it),
   * unless a success cleared the record since: the count then holds nothing of
   * that attempt's, and subtracting would take back another attempt's failure.
   */
  private async takeBackOne(username: string, turn: FailedLogins): Promise<void> {
    const sameEpoch = sameResets(turn)
    await withRetry('UpdateItem', () =>
      this.ifCondition(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey.failedLogins(username),
          ConditionExpression: `failures > :zero AND ${sameEpoch.condition}`,
          UpdateExpression: `${OUT_OF_THE_INDEX} ADD failures :minusOne`,
          ExpressionAttributeNames: INDEX_KEYS,
          ExpressionAttributeValues: {
            ':zero': 0,
            ':minusOne': -1,
            ...sameEpoch.values,
          },
        }),
      ),
    )
  }

  /** Applies `update` to the username's failed-login record only if it is still `seen`. */
  private updateIfUnchanged(
    username: string,
    seen: FailedLogins,
    update: {
      UpdateExpression: string
      ExpressionAttributeNames: Record<string, string>
      ExpressionAttributeValues: Record<string, unknown>
    },
  ): Promise<boolean> {
    const sameEpoch = sameResets(seen)
    return withRetry('UpdateItem', () =>
      this.ifCondition(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey.failedLogins(username),
          // The record as it was read: no failure, claim or clear landed since.
          ConditionExpression: `failures = :seen AND last_failed_at = :seenAt AND ${sameEpoch.condition}`,
          ...update,
          ExpressionAttributeValues: {
            ':seen': seen.failures,
            ':seenAt': seen.lastFailedAt,
            ...sameEpoch.values,
            ...update.ExpressionAttributeValues,
          },
        }),
      ),
    )
  }

  /** Sends a conditional update: true if it was applied, false if its condition was false. */
  private ifCondition(command: UpdateCommand): Promise<boolean> {
    return this.doc.send(command).then(
      () => true,
      (error: unknown) => {
        if (conditionFailed(error)) return false
        throw error
      },
    )
  }
}

/** The condition that no success cleared the record since `seen` (it had no `resets` yet, or the same). */
function sameResets(seen: FailedLogins): { condition: string; values: Record<string, number> } {
  return seen.resets === undefined
    ? { condition: 'attribute_not_exists(resets)', values: {} }
    : { condition: 'resets = :resets', values: { ':resets': seen.resets } }
}
