/**
 * Security events on DynamoDB (docs/design.md "Security events"): each one an
 * outbox item written in the same write as the change it reports, so that it
 * exists if and only if the change committed; the table's stream carries it
 * to the forwarder. Retries follow retry.ts.
 *
 * An outbox Put has no condition: its key is a fresh UUID, and a write the
 * SDK sends again after a lost answer writes the same item again, which
 * changes nothing and makes no second stream record.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  type DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb'
import type { EventOutbox } from '../../core/ports.js'
import type { SecurityEvent } from '../../core/security-events.js'
import { documentClient } from './items.js'
import { outboxItem } from './outbox-item.js'
import { AGAIN, cancelledBy, conditionFailed, withRetry } from './retry.js'
import { TABLE_SCHEMA } from './table.js'

/** The events as the Puts of a TransactWriteItems. */
export const eventPuts = (tableName: string, events: readonly SecurityEvent[] = []) =>
  events.map((event) => ({ Put: { TableName: tableName, Item: outboxItem.toItem(event) } }))

/** An UpdateItem's input, the part a transaction's Update takes too. */
export type ConditionalUpdate = Omit<UpdateCommandInput, 'ReturnValues'> & {
  readonly UpdateExpression: string
  readonly ConditionExpression: string
}

/**
 * One conditional update and its events, under the retry policy: a plain
 * UpdateItem without events, else a TransactWriteItems of the update and one
 * Put per event (a transaction costs twice the write units of its items: see
 * docs/design.md "Security events"). True if applied, false if the update's
 * condition was false (and so no event was written either).
 */
export function updateWithEvents(
  doc: DynamoDBDocumentClient,
  update: ConditionalUpdate,
  events: readonly SecurityEvent[] = [],
): Promise<boolean> {
  return withRetry(events.length ? 'TransactWriteItems' : 'UpdateItem', () =>
    sendUpdate(doc, update, events),
  )
}

/**
 * One attempt of `updateWithEvents`, for callers that run their own retry
 * loop: `AGAIN` when a transaction collided with another one on the item
 * (nothing was written; as retry.ts retries a single write's conflict).
 */
export function sendUpdate(
  doc: DynamoDBDocumentClient,
  update: ConditionalUpdate,
  events: readonly SecurityEvent[] = [],
): Promise<boolean | typeof AGAIN> {
  if (events.length === 0) {
    return doc.send(new UpdateCommand(update)).then(
      () => true,
      (error: unknown) => {
        if (conditionFailed(error)) return false
        throw error
      },
    )
  }
  const transaction = new TransactWriteCommand({
    TransactItems: [{ Update: update }, ...eventPuts(String(update.TableName), events)],
  })
  return doc.send(transaction).then(
    () => true,
    (error: unknown) => {
      if (cancelledBy(error, 'ConditionalCheckFailed')) return false
      if (cancelledBy(error, 'ConditionalCheckFailed', 'TransactionConflict')) return AGAIN
      throw error
    },
  )
}

/** The EventOutbox port: an event that no change carries, written alone (one PutItem). */
export class DynamoOutbox implements EventOutbox {
  private readonly doc: DynamoDBDocumentClient

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client)
  }

  async appendEvent(event: SecurityEvent): Promise<void> {
    await withRetry('PutItem', () =>
      this.doc.send(new PutCommand({ TableName: this.tableName, Item: outboxItem.toItem(event) })),
    )
  }

  /** Ids this container wrote, or found written: a repeat costs no call at all. */
  readonly #written = new Set<string>()

  async appendEventOnce(event: SecurityEvent): Promise<void> {
    if (this.#written.has(event.id)) return
    await withRetry('PutItem', () =>
      this.doc
        .send(
          new PutCommand({
            TableName: this.tableName,
            Item: outboxItem.toItem(event),
            // The id says what the event reports: an item already there is this very event,
            // written by an earlier refusal (or by this call, if its answer was lost).
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE_SCHEMA.partitionKey },
          }),
        )
        .catch((error: unknown) => {
          if (!conditionFailed(error)) throw error
        }),
    )
    // Bounded: the ids of an hour's signals, forgotten wholesale past a few thousand.
    if (this.#written.size >= WRITTEN_IDS_KEPT) this.#written.clear()
    this.#written.add(event.id)
  }
}

/** How many written ids a container remembers before it starts over. */
const WRITTEN_IDS_KEPT = 10_000
