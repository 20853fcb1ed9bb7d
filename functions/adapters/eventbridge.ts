import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge'
import type { CloudEvent } from '../core/security-events.js'
import type { EventSink } from '../forwarder/forward.js'

/**
 * The `source` of every entry on the bus, for EventBridge rules
 * (`{"source": ["token-service"], "detail-type": ["token.reuse_detected"]}`);
 * the CloudEvent's own `source`, the issuer, is in the detail.
 */
export const EVENTBRIDGE_SOURCE = 'token-service'

/**
 * The forwarder's sink in AWS: PutEvents on the service's bus, one entry per
 * event: `detail-type` is the event type, `detail` the whole CloudEvent
 * (its `id` is what consumers deduplicate on: EventBridge gives each entry an
 * id of its own, new at every retry).
 */
export class EventBridgeSink implements EventSink {
  /** PutEvents takes at most 10 entries. */
  readonly maxBatch = 10

  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async send(events: readonly CloudEvent[]): Promise<readonly string[]> {
    const { Entries = [] } = await this.client.send(
      new PutEventsCommand({
        Entries: events.map((event) => ({
          EventBusName: this.busName,
          Source: EVENTBRIDGE_SOURCE,
          DetailType: event.type,
          Detail: JSON.stringify(event),
          Time: new Date(event.time),
        })),
      }),
    )
    // The answer lists one result per entry, in order; a failed one has an ErrorCode.
    return events
      .filter((_, index) => !Entries[index]?.EventId || Entries[index]?.ErrorCode)
      .map((event) => event.id)
  }
}
