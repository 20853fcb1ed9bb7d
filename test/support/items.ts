/**
 * The service's items read straight from the table, as the tests inspect them
 * (the layout is functions/adapters/table.ts's).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb'
import { failedLoginsItem } from '../../functions/adapters/dynamodb/items.js'
import { outboxItem } from '../../functions/adapters/dynamodb/outbox-item.js'
import { GSI1 } from '../../functions/adapters/dynamodb/table.js'
import type { FailedLogins } from '../../functions/core/ports.js'
import type { SecurityEvent } from '../../functions/core/security-events.js'

// biome-ignore lint/suspicious/noExplicitAny: items are inspected freely
export type Item = Record<string, any>

export interface Items {
  /** A session's item and how many retired-token records it holds (strongly consistent). */
  session(sid: string): Promise<{ session: Item | undefined; tokens: number }>
  /** A user's item (strongly consistent). */
  user(sub: string): Promise<Item | undefined>
  /** Every session item of a user, listed or not (a strongly consistent scan). */
  sessionsOf(sub: string): Promise<Item[]>
  /** The session items a user's pointers name (strongly consistent). */
  listedSessionsOf(sub: string): Promise<Item[]>
  /** The session items of a user written before issue 17, through gsi1 (eventually consistent). */
  legacySessionsOf(sub: string): Promise<Item[]>
  /** A username's failed-login record (strongly consistent). */
  failedLogins(username: string): Promise<FailedLogins | undefined>
  /** Every security event in the outbox, oldest first (a strongly consistent scan). */
  events(): Promise<SecurityEvent[]>
}

/** The events written since `before` (an earlier `events()`), oldest first. */
export const newEvents = (
  before: readonly SecurityEvent[],
  after: readonly SecurityEvent[],
): SecurityEvent[] => {
  const seen = new Set(before.map((event) => event.id))
  return after.filter((event) => !seen.has(event.id))
}

export function items(client: DynamoDBClient, tableName: string): Items {
  const doc = DynamoDBDocumentClient.from(client)
  return {
    async session(sid) {
      const { Items = [] } = await doc.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `SESSION#${sid}` },
          ConsistentRead: true,
        }),
      )
      return {
        session: Items.find((item) => item.sk === 'SESSION'),
        tokens: Items.filter((item) => String(item.sk).startsWith('TOKEN#')).length,
      }
    },
    async user(sub) {
      const { Item } = await doc.send(
        new GetCommand({
          TableName: tableName,
          Key: { pk: `USER#${sub}`, sk: 'USER' },
          ConsistentRead: true,
        }),
      )
      return Item
    },
    async sessionsOf(sub) {
      const found: Item[] = []
      let cursor: Record<string, unknown> | undefined
      do {
        const page = await doc.send(
          new ScanCommand({
            TableName: tableName,
            FilterExpression: 'sk = :session AND #sub = :sub',
            ExpressionAttributeNames: { '#sub': 'sub' },
            ExpressionAttributeValues: { ':session': 'SESSION', ':sub': sub },
            ConsistentRead: true,
            ExclusiveStartKey: cursor,
          }),
        )
        found.push(...(page.Items ?? []))
        cursor = page.LastEvaluatedKey
      } while (cursor)
      return found.sort((a, b) => b.created_at - a.created_at)
    },
    async listedSessionsOf(sub) {
      const { Items: pointers = [] } = await doc.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :user AND begins_with(sk, :session)',
          ExpressionAttributeValues: { ':user': `USER#${sub}`, ':session': 'SESSION#' },
          ConsistentRead: true,
        }),
      )
      const found: Item[] = []
      for (const pointer of pointers) {
        const { Item } = await doc.send(
          new GetCommand({
            TableName: tableName,
            Key: { pk: `SESSION#${String(pointer.sk).slice('SESSION#'.length)}`, sk: 'SESSION' },
            ConsistentRead: true,
          }),
        )
        if (Item) found.push(Item)
      }
      return found
    },
    async failedLogins(username) {
      const { Item } = await doc.send(
        new GetCommand({
          TableName: tableName,
          Key: { pk: `USERNAME#${username}`, sk: 'THROTTLE' },
          ConsistentRead: true,
        }),
      )
      return Item ? failedLoginsItem.fromItem(Item) : undefined
    },
    async legacySessionsOf(sub) {
      const { Items = [] } = await doc.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: GSI1,
          KeyConditionExpression: 'gsi1pk = :user AND begins_with(gsi1sk, :session)',
          ExpressionAttributeValues: { ':user': `USER#${sub}`, ':session': 'SESSION#' },
        }),
      )
      return Items
    },
    async events() {
      const found: SecurityEvent[] = []
      let cursor: Record<string, unknown> | undefined
      do {
        const page = await doc.send(
          new ScanCommand({
            TableName: tableName,
            FilterExpression: 'sk = :event',
            ExpressionAttributeValues: { ':event': 'EVENT' },
            ConsistentRead: true,
            ExclusiveStartKey: cursor,
          }),
        )
        for (const item of page.Items ?? []) {
          const event = outboxItem.fromItem(item)
          if (!event)
            throw new Error(`an outbox item that is not an event: ${JSON.stringify(item)}`)
          found.push(event)
        }
        cursor = page.LastEvaluatedKey
      } while (cursor)
      // By time, then id: a stable order for events of the same millisecond.
      return found.sort((a, b) => a.time - b.time || a.id.localeCompare(b.id))
    },
  }
}
