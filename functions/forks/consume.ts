/**
 * The fork consumer's rule on the table's stream (docs/multi-region.md "Fork detection"):
 * each replaced session item whose new state does not descend from the old (core/forks.ts)
 * ends its family. The event source mapping passes only MODIFY records of session items
 * that carry an `epoch` in either image (lib/fork-detection.ts): sessions never adopted
 * cost no invocation.
 *
 * Records are handled in order; the first that fails is reported (Lambda's
 * `ReportBatchItemFailures`), so the batch is sent again from it and nothing after it is lost.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import { sessionItem } from '../adapters/dynamodb/items.js'
import { itemKey, TABLE_SCHEMA } from '../adapters/dynamodb/table.js'
import { endForkedSession, type ForkDeps, type ForkedSession, isFork } from '../core/forks.js'
import type { Telemetry } from '../core/ports.js'

/** A stream record with both images (the global table's stream: NEW_AND_OLD_IMAGES). */
export interface ForkStreamRecord {
  readonly eventName?: string
  readonly dynamodb?: {
    readonly Keys?: Record<string, unknown>
    readonly OldImage?: Record<string, unknown>
    readonly NewImage?: Record<string, unknown>
    readonly SequenceNumber?: string
  }
}

export interface ForkConsumerDeps extends ForkDeps {
  readonly telemetry: Telemetry
  /** Told of a record that failed (its error), before the batch is reported from it. */
  readonly onRecordFailure?: (error: unknown, sequenceNumber: string | undefined) => void
}

/** Lambda's partial batch response for a stream. */
export interface ForkBatchResponse {
  batchItemFailures: { itemIdentifier: string }[]
}

const SESSION_SORT_KEY = itemKey.session('').sk

/** The forked session a record shows, if it shows one. */
export function forkedBy(record: ForkStreamRecord): { sid: string; home?: string } | undefined {
  const change = record.dynamodb
  if (record.eventName !== 'MODIFY' || !change?.OldImage || !change.NewImage) return undefined
  const image = (raw: Record<string, unknown>) =>
    unmarshall(raw as Record<string, AttributeValue>) as Record<string, unknown>
  const next = image(change.NewImage)
  if (next[TABLE_SCHEMA.sortKey] !== SESSION_SORT_KEY) return undefined
  const before = sessionItem.fromItem(image(change.OldImage))
  const after = sessionItem.fromItem(next)
  if (!isFork(before, after)) return undefined
  return { sid: after.sid, ...(after.home !== undefined && { home: after.home }) }
}

/** One batch of the stream, or a request of another region's consumer to end a fork here. */
export async function consumeForks(
  deps: ForkConsumerDeps,
  event:
    | { readonly Records?: readonly ForkStreamRecord[] }
    | (ForkedSession & { forwardedFrom?: string }),
): Promise<ForkBatchResponse | { statusCode: number }> {
  if ('forkedSession' in event) {
    // Forwarded by the region that saw the fork: this is the converged item's home.
    const done = await endForkedSession(deps, { sid: event.forkedSession }, { forwarded: true })
    if (done === 'revoked') deps.telemetry.emit('session_forked', { decided: 'home' })
    return { statusCode: 200 }
  }
  for (const record of event.Records ?? []) {
    try {
      const forked = forkedBy(record)
      if (!forked) continue
      const done = await endForkedSession(deps, forked)
      if (done === 'revoked') deps.telemetry.emit('session_forked', { decided: 'here' })
    } catch (error) {
      const sequence = record.dynamodb?.SequenceNumber
      deps.onRecordFailure?.(error, sequence)
      if (sequence === undefined)
        throw new Error('a stream record without a sequence number failed')
      return { batchItemFailures: [{ itemIdentifier: sequence }] }
    }
  }
  return { batchItemFailures: [] }
}
