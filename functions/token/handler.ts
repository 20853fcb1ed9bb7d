import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { KMSClient } from '@aws-sdk/client-kms'
import { sdkOptions } from '../adapters/aws.js'
import { lambdaDpopGrant } from '../adapters/dpop.js'
import { DynamoOutbox } from '../adapters/dynamodb/outbox.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { KmsGraceKeys } from '../adapters/kms-grace-keys.js'
import { KmsSigner } from '../adapters/kms-signer.js'
import { lambdaHttpHandler, warmUp } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadBackdateSeconds,
  loadDpopNonceKeyId,
  loadGraceKeyId,
  loadHttpConfig,
  loadSigningConfig,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import { tokenRoute } from './route.js'

// Cold start: configuration, clients and adapters, built once; no I/O but the key warm-up.
const { issuer, clients } = loadHttpConfig()
const aws = sdkOptions(loadAwsCallConfig())
const observability = createObservability()
const kms = traced(new KMSClient(aws))
const signer = new KmsSigner({ client: kms, ...loadSigningConfig() })
const graceKeys = new KmsGraceKeys({ client: kms, keyId: loadGraceKeyId() })
// The data key too, so that a warm rotation makes no call for it.
warmUp(() => Promise.all([signer.keyId(), graceKeys.current()]))
const dynamodb = traced(new DynamoDBClient(aws))
const tableName = loadTableName()
const nonceKeyId = loadDpopNonceKeyId(clients)

export const handler = lambdaHttpHandler(
  'token',
  tokenRoute,
  {
    sessions: new DynamoSessions(dynamodb, tableName),
    outbox: new DynamoOutbox(dynamodb, tableName),
    signer,
    graceKeys,
    clock: systemClock,
    events: observability.events,
    settings: { issuer, backdateSeconds: loadBackdateSeconds() },
    clients,
    dpop: lambdaDpopGrant({ kms, dynamodb, tableName, nonceKeyId, clock: systemClock }),
  },
  { clients, observability },
)
