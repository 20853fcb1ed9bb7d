import type { AwsCallConfig } from '../config.js'

/**
 * The options every AWS SDK client here is built with: a bounded time per
 * attempt and a bounded number of attempts, so that a fault answers 503 well
 * within the function's timeout (docs/design.md "Faults").
 */
export function sdkOptions(config: AwsCallConfig) {
  return {
    maxAttempts: config.maxAttempts,
    requestHandler: {
      connectionTimeout: config.callTimeoutMs,
      requestTimeout: config.callTimeoutMs,
      // Without it the SDK only logs a warning when requestTimeout passes and keeps
      // waiting (up to its 5-minute socket timeout); with it the attempt fails with a
      // TimeoutError, which the SDK retries and which then answers 503.
      throwOnRequestTimeout: true,
    },
  }
}
