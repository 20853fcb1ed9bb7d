import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { KMSClient } from '@aws-sdk/client-kms'
import { sdkOptions } from '../adapters/aws.js'
import { lambdaDpopGrant } from '../adapters/dpop.js'
import { DynamoLoginThrottle } from '../adapters/dynamodb/login-throttle.js'
import { DynamoOutbox } from '../adapters/dynamodb/outbox.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { lambdaKeyPairStore } from '../adapters/dynamodb/signing-keys.js'
import { lambdaHttpHandler, warmUp } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { lambdaSigner } from '../adapters/signing.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadBackdateSeconds,
  loadDpopNonceKeyId,
  loadEnvelopeConfig,
  loadHttpConfig,
  loadLoginBackoff,
  loadOutboxRegion,
  loadRegions,
  loadSigningConfig,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import { loginRoute } from './route.js'

// Cold start: configuration, clients and adapters, built once; no I/O but the key warm-up.
const { issuer, clients } = loadHttpConfig()
const aws = sdkOptions(loadAwsCallConfig())
const observability = createObservability()
const kms = traced(new KMSClient(aws))
const dynamodb = traced(new DynamoDBClient(aws))
const tableName = loadTableName()
// With several regions, the region its security events are marked with (events once).
setOutboxRegion(loadOutboxRegion())
const regions = loadRegions()
const signing = loadSigningConfig()
const envelope = loadEnvelopeConfig(signing)
const signer = lambdaSigner({
  kms,
  signing,
  ...(envelope && {
    envelope: {
      ...envelope,
      store: lambdaKeyPairStore(dynamodb, tableName, envelope.keyPairRegion, aws, traced),
    },
  }),
})
// The kid, and an envelope key's private key unwrapped once: no request waits for them.
warmUp(() => Promise.all([signer.keyId(), signer.prepare()]))
const nonceKeyId = loadDpopNonceKeyId(clients)

export const handler = lambdaHttpHandler(
  'login',
  loginRoute,
  {
    loginAttempts: new DynamoLoginThrottle(dynamodb, tableName),
    sessions: new DynamoSessions(dynamodb, tableName),
    outbox: new DynamoOutbox(dynamodb, tableName),
    signer,
    clock: systemClock,
    telemetry: observability.telemetry,
    // With several regions, the sessions started here are homed here (docs/multi-region.md).
    settings: { issuer, backdateSeconds: loadBackdateSeconds(), ...(regions && { regions }) },
    clients,
    loginBackoff: loadLoginBackoff(),
    dpop: lambdaDpopGrant({ kms, dynamodb, tableName, nonceKeyId, clock: systemClock }),
  },
  { clients, observability },
)
