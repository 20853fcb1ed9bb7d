import { EventBridgeClient } from '@aws-sdk/client-eventbridge'
import type { DynamoDBStreamEvent } from 'aws-lambda'
import { sdkOptions } from '../adapters/aws.js'
import { EventBridgeSink } from '../adapters/eventbridge.js'
import { createObservability } from '../adapters/observability.js'
import { traced } from '../adapters/tracing.js'
import { loadAwsCallConfig, loadForwarderConfig } from '../config.js'
import { type BatchResponse, forward } from './forward.js'

// Cold start: configuration and the EventBridge client, built once; no I/O.
const { busName, source } = loadForwarderConfig()
const { logger } = createObservability()
const sink = new EventBridgeSink(
  traced(new EventBridgeClient(sdkOptions(loadAwsCallConfig()))),
  busName,
)

/**
 * The table's stream, filtered to inserted outbox items by the event source
 * mapping (lib/security-events.ts), to the bus: functions/forwarder/forward.ts.
 */
export const handler = async (event: DynamoDBStreamEvent): Promise<BatchResponse> => {
  const { response, report } = await forward(event.Records, sink, source)
  if (report.unreadable) logger.error('security event items not readable, skipped', { ...report })
  if (report.retryFrom) {
    logger.warn('security events not forwarded, resent from retryFrom', { ...report })
  } else logger.info('security events forwarded', { ...report })
  return response
}
