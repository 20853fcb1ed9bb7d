import { Tracer } from '@aws-lambda-powertools/tracer'

/**
 * X-Ray subsegments for every call of an AWS SDK client, so that a trace shows the
 * DynamoDB, KMS and EventBridge time inside a function's. Lambda samples the traces
 * (active tracing: the first request each second and 5% of the rest; Lambda honours no
 * X-Ray sampling rule); `POWERTOOLS_TRACE_ENABLED` (the config's `tracing`) turns it off.
 * The authorizers do not use it: their bundles stay free of the X-Ray SDK.
 */
const tracer = new Tracer({ serviceName: 'token-service' })

/** `client`, its calls traced (a no-op where tracing is off, or outside Lambda). */
export function traced<T>(client: T): T {
  return tracer.captureAWSv3Client(client)
}
