import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda'
import type { HomeForwardConfig } from '../config.js'
import { TemporarilyUnavailable } from '../core/errors.js'
import type { HomeAnswer, HomeRegion } from '../core/regions.js'
import { FORWARDED_FROM } from './http.js'
import { traced } from './tracing.js'

/**
 * The way to a session's home region in AWS (docs/multi-region.md "Forwarding"): a
 * synchronous `Invoke` of the home's token function (the same name in every region)
 * with the event as API Gateway delivered it here, plus `forwardedFrom`, a member API
 * Gateway never sets, so no client can forge it. One attempt within `timeoutMs`: a home
 * that does not answer in time, or has no such function, is unreachable (`FAILOVER`); one
 * whose Lambda service refused the call (throttled, denied) or whose function failed is a
 * fault here (503), since the home is there and may answer a retry.
 */
export function lambdaHomeRegion(
  here: string,
  config: HomeForwardConfig,
  options: { readonly endpoint?: (region: string) => string } = {},
): HomeRegion {
  // One client per home region, built on first use and kept for the container's life.
  const clients = new Map<string, LambdaClient>()
  const clientFor = (region: string) => {
    let client = clients.get(region)
    if (!client) {
      client = traced(
        new LambdaClient({
          region,
          maxAttempts: 1,
          requestHandler: {
            connectionTimeout: config.timeoutMs,
            requestTimeout: config.timeoutMs,
            throwOnRequestTimeout: true,
          },
          ...(options.endpoint && { endpoint: options.endpoint(region) }),
        }),
      )
      clients.set(region, client)
    }
    return client
  }
  return {
    async forward(home, event): Promise<HomeAnswer | 'unreachable'> {
      const payload = JSON.stringify({ ...(event as object), [FORWARDED_FROM]: here })
      let output: InvokeCommandOutput
      try {
        output = await clientFor(home).send(
          new InvokeCommand({
            FunctionName: config.functionName,
            InvocationType: 'RequestResponse',
            Payload: new TextEncoder().encode(payload),
          }),
          { abortSignal: AbortSignal.timeout(config.timeoutMs) },
        )
      } catch (error) {
        const { name, $metadata } = error as Error & { $metadata?: { httpStatusCode?: number } }
        // The region, its Lambda endpoint or the network (nothing answered), or no such
        // function there (the home's stack is gone): the home is lost.
        if ($metadata?.httpStatusCode === undefined || name === 'ResourceNotFoundException') {
          return 'unreachable'
        }
        // The home's Lambda service answered: the region is there, busy (throttled) or
        // refusing (a permission, a quota). A retry, not a new login for every user of
        // that region.
        throw new TemporarilyUnavailable(`home region ${home} refused the forward: ${name}`, {
          cause: error,
        })
      }
      if (output.FunctionError || !output.Payload) {
        throw new TemporarilyUnavailable(`home region ${home} failed: ${output.FunctionError}`)
      }
      return homeAnswer(new TextDecoder().decode(output.Payload), home)
    },
  }
}

/** The home's API Gateway result, checked for its shape. */
export function homeAnswer(text: string, home: string): HomeAnswer {
  const result = JSON.parse(text) as Partial<Record<keyof HomeAnswer, unknown>>
  if (typeof result.statusCode !== 'number') {
    throw new TemporarilyUnavailable(`home region ${home} answered no status`)
  }
  return {
    statusCode: result.statusCode,
    ...(result.headers !== undefined && { headers: result.headers as Record<string, string> }),
    ...(Array.isArray(result.cookies) && { cookies: result.cookies as string[] }),
    ...(typeof result.body === 'string' && { body: result.body }),
  }
}
