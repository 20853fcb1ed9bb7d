/**
 * The forwarder's one rule (docs/design.md "Security events"): each outbox
 * item the table's stream shows being inserted becomes one CloudEvent, sent
 * with the id core gave it, so that a retry sends the same id again and
 * consumers can drop the duplicate. Every other record is skipped.
 *
 * Failures are reported per record (Lambda's `ReportBatchItemFailures` for
 * streams): the sequence number of the first record not sent, so that Lambda
 * sends the batch again from there, and nothing after a failure is lost. The
 * function itself only fails on a bug, which the event source mapping then
 * retries by halves (bisect) until the record at fault is isolated.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { outboxItem } from '../adapters/dynamodb/outbox-item.js'
import { TABLE_SCHEMA } from '../adapters/dynamodb/table.js'
import { type CloudEvent, toCloudEvent } from '../core/security-events.js'

/** A stream record, as Lambda hands it over and as DynamoDB Streams' GetRecords returns it. */
export interface StreamRecord {
  readonly eventName?: string
  readonly dynamodb?: {
    readonly NewImage?: Record<string, { readonly S?: string } | undefined>
    readonly SequenceNumber?: string
  }
}

/** Where the events go: EventBridge in AWS, standard output in local mode. */
export interface EventSink {
  /** How many events one `send` takes at most. */
  readonly maxBatch: number
  /** Sends the events; returns the ids of those it could not send. May throw: none sent. */
  send(events: readonly CloudEvent[]): Promise<readonly string[]>
}

/** Lambda's partial batch response for a stream. */
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[]
}

/** What a forwarding run reports, for the logs (no event content). */
export interface Forwarded {
  readonly sent: number
  readonly skipped: number
  /** Keys of outbox items that hold no readable event (a bug): skipped, left in the table. */
  readonly unreadable?: readonly string[]
  /** The sequence number Lambda resends from, if any event was not sent. */
  readonly retryFrom?: string
  readonly failure?: string
}

/**
 * Sends the security events among `records` to `sink` (`source`: the
 * CloudEvents source), all batches at once; answers which record to resend from.
 */
export async function forward(
  records: readonly StreamRecord[],
  sink: EventSink,
  source: string,
): Promise<{ response: BatchResponse; report: Forwarded }> {
  const pending: { sequenceNumber: string; event: CloudEvent }[] = []
  const unreadable: string[] = []
  for (const record of records) {
    let event: CloudEvent | undefined
    try {
      event = cloudEventOf(record, source)
    } catch {
      // Retrying cannot mend it, and holding the shard would delay every later event: it is
      // reported (the logs), and stays in the table for a resend once the bug is fixed.
      unreadable.push(String(record.dynamodb?.NewImage?.[TABLE_SCHEMA.partitionKey]?.S))
      continue
    }
    if (event) pending.push({ sequenceNumber: record.dynamodb?.SequenceNumber ?? '', event })
  }
  const batches: (typeof pending)[] = []
  for (let at = 0; at < pending.length; at += sink.maxBatch) {
    batches.push(pending.slice(at, at + sink.maxBatch))
  }
  const outcomes = await Promise.all(
    batches.map((batch) =>
      sink.send(batch.map(({ event }) => event)).then(
        (failedIds) => ({ failedIds: new Set(failedIds), failure: undefined }),
        (error: unknown) => ({
          failedIds: new Set(batch.map(({ event }) => event.id)),
          failure: error instanceof Error ? error.name : 'unknown error',
        }),
      ),
    ),
  )
  const failed = outcomes.flatMap(({ failedIds }, index) =>
    (batches[index] ?? []).filter(({ event }) => failedIds.has(event.id)),
  )
  // Records come in stream order: resending from the earliest failure resends every later one.
  const first = failed[0]
  const failure = outcomes.find((outcome) => outcome.failure)?.failure
  return {
    response: { batchItemFailures: first ? [{ itemIdentifier: first.sequenceNumber }] : [] },
    report: {
      sent: pending.length - failed.length,
      skipped: records.length - pending.length,
      ...(unreadable.length ? { unreadable } : {}),
      ...(first ? { retryFrom: first.sequenceNumber } : {}),
      ...(failure ? { failure } : {}),
    },
  }
}

/** The CloudEvent of an inserted outbox item; undefined for any other record. */
function cloudEventOf(record: StreamRecord, source: string): CloudEvent | undefined {
  // A MODIFY of an outbox item is a write sent twice (same content); a REMOVE is its TTL.
  if (record.eventName !== 'INSERT' || !record.dynamodb?.NewImage) return undefined
  const event = outboxItem.fromAttributeValues(
    record.dynamodb.NewImage as Record<string, AttributeValue>,
  )
  return event && toCloudEvent(event, source)
}
