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
  OUTBOX_RETENTION_DAYS,
  OUTBOX_SORT_KEY,
  TABLE_SCHEMA,
  ttlSeconds,
} from './table.js'

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
      subject: event.subject,
      data: { ...event.data },
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(event.time + OUTBOX_RETENTION_DAYS * 86_400_000),
    }
  },

  /** The event an item holds; undefined for any other item, or one that is not a whole event. */
  fromItem(item: Item): SecurityEvent | undefined {
    const { id, type, time, subject, data } = item
    if (item[TABLE_SCHEMA.sortKey] !== OUTBOX_SORT_KEY) return undefined
    if (typeof id !== 'string' || typeof time !== 'number') return undefined
    if (!(SECURITY_EVENT_TYPES as readonly unknown[]).includes(type)) return undefined
    if (typeof data !== 'object' || data === null) return undefined
    return {
      id,
      type: type as SecurityEventType,
      time,
      ...(typeof subject === 'string' ? { subject } : {}),
      data: data as SecurityEventData,
    }
  },

  /** The event in a stream record's NEW_IMAGE (attribute-value form). */
  fromAttributeValues(image: Record<string, AttributeValue>): SecurityEvent | undefined {
    return outboxItem.fromItem(unmarshall(image))
  },
}
