import { KMSClient } from '@aws-sdk/client-kms'
import { sdkOptions } from '../adapters/aws.js'
import { KmsSigner } from '../adapters/kms-signer.js'
import { lambdaHttpHandler, warmUp } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadHttpConfig,
  loadJwksMaxAgeSeconds,
  loadSigningConfig,
} from '../config.js'
import { jwksRoute } from './route.js'

// Cold start: configuration and the KMS client, built once; then every public key is fetched.
const { issuer, clients } = loadHttpConfig()
const observability = createObservability()
const signer = new KmsSigner({
  client: traced(new KMSClient(sdkOptions(loadAwsCallConfig()))),
  ...loadSigningConfig(),
})
warmUp(() => signer.publicKeys())

export const handler = lambdaHttpHandler(
  'jwks',
  jwksRoute,
  { issuer, signer, jwksMaxAgeSeconds: loadJwksMaxAgeSeconds() },
  { clients, observability },
)
