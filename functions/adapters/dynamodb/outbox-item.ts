/**
 * The outbox item's codec (docs/design.md "Security events"), apart from
 * items.ts so that the forwarder's bundle, which decodes stream records,
 * holds no DynamoDB client.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import {
  SECURITY_EVENT_TYPES,
  type SecurityEvent,
  type SecurityEventData,
  type SecurityEventType,
} from '../../core/security-events.js'
import type { Item } from './items.js'
import {
  itemKey,
  OUTBOX_REGION_ATTRIBUTE,
  OUTBOX_RETENTION_DAYS,
  OUTBOX_SORT_KEY,
  TABLE_SCHEMA,
  ttlSeconds,
} from './table.js'

/**
 * With several regions, the region this process writes events in (`OUTBOX_REGION`, set
 * once at cold start by functions/adapters/lambda.ts): every replica's stream carries every
 * outbox item, and only the writing region's forwarder may send it (lib/security-events.ts).
 * Undefined with one region: no attribute, as before.
 */
let writerRegion: string | undefined

/** Marks the events this process writes from now on with `region` (cold start only). */
export function setOutboxRegion(region: string | undefined): void {
  writerRegion = region
}

/**
 * A security event as its outbox item (docs/design.md "Security events"):
 * exactly what core decided, kept `OUTBOX_RETENTION_DAYS`. The stream's
 * NEW_IMAGE of this item is what the forwarder reads.
 */
export const outboxItem = {
  toItem(event: SecurityEvent): Item {
    return {
      ...itemKey.event(event.id),
      id: event.id,
      type: event.type,
      time: event.time,
      ...(writerRegion !== undefined && { [OUTBOX_REGION_ATTRIBUTE]: writerRegion }),
      subject: event.subject,
      // No empty map: some stream readers (the DynamoDB Streams SDK client) drop its type.
      data: Object.keys(event.data).length ? { ...event.data } : undefined,
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(event.time + OUTBOX_RETENTION_DAYS * 86_400_000),
    }
  },

  /** The event an item holds; undefined for any other item, or one that is not a whole event. */
  fromItem(item: Item): SecurityEvent | undefined {
    const { id, type, time, subject, data } = item
    if (item[TABLE_SCHEMA.sortKey] !== OUTBOX_SORT_KEY) return undefined
    if (typeof id !== 'string' || typeof time !== 'number') return undefined
    if (!(SECURITY_EVENT_TYPES as readonly unknown[]).includes(type)) return undefined
    if (data !== undefined && (typeof data !== 'object' || data === null)) return undefined
    return {
      id,
      type: type as SecurityEventType,
      time,
      ...(typeof subject === 'string' ? { subject } : {}),
      data: (data ?? {}) as SecurityEventData,
    }
  },

  /** True for an outbox item's key or image, read without decoding the rest. */
  isOutboxImage(image: Record<string, unknown>): boolean {
    return (image[TABLE_SCHEMA.sortKey] as { S?: unknown } | undefined)?.S === OUTBOX_SORT_KEY
  },

  /**
   * The event in a stream record's NEW_IMAGE (attribute-value form); undefined
   * for any other item. Throws for an outbox item it cannot decode.
   */
  fromAttributeValues(image: Record<string, AttributeValue>): SecurityEvent | undefined {
    if (!outboxItem.isOutboxImage(image)) return undefined
    const event = outboxItem.fromItem(unmarshall(image))
    if (!event) throw new Error('an outbox item that holds no security event')
    return event
  },
}
