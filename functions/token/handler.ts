import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { KMSClient } from '@aws-sdk/client-kms'
import { sdkOptions } from '../adapters/aws.js'
import { lambdaDpopGrant } from '../adapters/dpop.js'
import { DynamoGraceKeys } from '../adapters/dynamodb/grace-keys.js'
import { DynamoOutbox } from '../adapters/dynamodb/outbox.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoRegionSwitch } from '../adapters/dynamodb/regions.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { lambdaKeyPairStore } from '../adapters/dynamodb/signing-keys.js'
import { lambdaHomeRegion } from '../adapters/home-region.js'
import { KmsGraceKeys } from '../adapters/kms-grace-keys.js'
import { lambdaHttpHandler, warmUp } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { lambdaSigner } from '../adapters/signing.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadBackdateSeconds,
  loadDpopNonceKeyId,
  loadEnvelopeConfig,
  loadGraceKeyId,
  loadHomeForwardConfig,
  loadHttpConfig,
  loadOutboxRegion,
  loadRegions,
  loadSigningConfig,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import { lostRegions } from '../core/regions.js'
import { tokenRoute } from './route.js'

// Cold start: configuration, clients and adapters, built once; no I/O but the key warm-up.
const { issuer, clients } = loadHttpConfig()
const aws = sdkOptions(loadAwsCallConfig())
const observability = createObservability()
const kms = traced(new KMSClient(aws))
const dynamodb = traced(new DynamoDBClient(aws))
const tableName = loadTableName()
// With several regions, the region its security events are marked with (events once).
setOutboxRegion(loadOutboxRegion())
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
const graceKeys = new KmsGraceKeys({
  client: kms,
  keyId: loadGraceKeyId(),
  directory: new DynamoGraceKeys(dynamodb, tableName),
})
// The data key too, and an envelope key's private key, so that a warm rotation makes no call.
warmUp(() => Promise.all([signer.keyId(), signer.prepare(), graceKeys.current()]))
const nonceKeyId = loadDpopNonceKeyId(clients)
// With several regions: a refresh homed elsewhere is decided there (docs/multi-region.md).
const regions = loadRegions()
const homeRegion = regions && lambdaHomeRegion(regions.here, loadHomeForwardConfig())
// `failover: 'adopt'`: the operators' switch, read only when a home did not answer, cached.
const lost =
  regions?.failover === 'adopt'
    ? lostRegions(new DynamoRegionSwitch(dynamodb, tableName), systemClock)
    : undefined

export const handler = lambdaHttpHandler(
  'token',
  tokenRoute,
  {
    sessions: new DynamoSessions(dynamodb, tableName),
    outbox: new DynamoOutbox(dynamodb, tableName),
    signer,
    graceKeys,
    clock: systemClock,
    telemetry: observability.telemetry,
    settings: { issuer, backdateSeconds: loadBackdateSeconds(), ...(regions && { regions }) },
    ...(homeRegion && { homeRegion }),
    ...(lost && { lostRegions: lost }),
    clients,
    dpop: lambdaDpopGrant({ kms, dynamodb, tableName, nonceKeyId, clock: systemClock }),
  },
  { clients, observability },
)
