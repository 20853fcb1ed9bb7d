import { Logger } from '@aws-lambda-powertools/logger'
import { GetPublicKeyCommand, KMSClient, KMSServiceException } from '@aws-sdk/client-kms'
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda'
import { mockClient } from 'aws-sdk-client-mock'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { httpHandler } from '../../functions/adapters/http.js'
import { KmsSigner } from '../../functions/adapters/kms-signer.js'
import { createObservability } from '../../functions/adapters/observability.js'
import { corsOrigins } from '../../functions/config.js'
import { parseClients } from '../../functions/core/clients.js'
import { jwksRoute } from '../../functions/jwks/route.js'
import { HTTP_FUNCTIONS } from '../../functions/routes.js'
import { synth, testClients } from './synth.js'

/**
 * The subset of CloudWatch Logs' JSON filter syntax the stack uses:
 * `{ $.field = "value" && $.other = "prefix*" }`.
 */
function matches(pattern: string, line: Record<string, unknown>): boolean {
  const body = /^\{(.*)\}$/.exec(pattern.trim())?.[1]
  if (!body) throw new Error(`not a JSON filter pattern: ${pattern}`)
  return body.split('&&').every((condition) => {
    const [, field, value] = /^\s*\$\.(\w+)\s*=\s*"([^"]*)"\s*$/.exec(condition) ?? []
    if (field === undefined || value === undefined) throw new Error(`unsupported: ${condition}`)
    const actual = line[field]
    if (typeof actual !== 'string') return false
    return value.endsWith('*') ? actual.startsWith(value.slice(0, -1)) : actual === value
  })
}

const event = (path: string): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: `GET ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: { http: { method: 'GET', path }, requestId: 'r1' },
  }) as unknown as APIGatewayProxyEventV2

const context = {
  functionName: 'jwks',
  awsRequestId: 'r1',
  getRemainingTimeInMillis: () => 5000,
} as unknown as Context

describe('KMS throttling alarm', () => {
  afterEach(() => vi.restoreAllMocks())

  it('counts the very line a function logs when KMS throttles it', async () => {
    const { template } = synth()
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter'))
    const pattern = (filters[0] as { Properties: { FilterPattern: string } }).Properties
      .FilterPattern

    const kms = new KMSClient({ region: 'eu-west-1' })
    mockClient(kms)
      .on(GetPublicKeyCommand)
      .rejects(
        new KMSServiceException({
          name: 'ThrottlingException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
          message: 'Rate exceeded',
        }),
      )
    // Powertools writes errors to stderr; Lambda sends both streams to the log group.
    const lines: string[] = []
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
      vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
        lines.push(String(chunk))
        return write(chunk, ...rest)
      }) as typeof stream.write)
    }
    // The jwks function as its handler wires it, on a KMS client that is throttled.
    const handler = httpHandler(
      jwksRoute,
      {
        issuer: 'https://auth.example.com',
        signer: new KmsSigner({ client: kms, activeKeyId: 'alias/active' }),
        jwksMaxAgeSeconds: 300,
      },
      {
        ...createObservability(new Logger({ serviceName: 'token-service' })),
        corsOrigins: corsOrigins(parseClients(testClients)),
      },
      HTTP_FUNCTIONS.jwks.http,
    )

    const response = await handler(event('/.well-known/jwks.json'), context)

    expect(response.statusCode).toBe(503)
    const logged = lines
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const counted = logged.filter((line) => matches(pattern, line))
    expect(counted).toHaveLength(1)
    expect(counted[0]).toMatchObject({ level: 'ERROR', cause: 'ThrottlingException' })
    // A KMS failure that is not throttling, or a DynamoDB throttle, is not counted.
    expect(matches(pattern, { cause: 'AccessDeniedException', detail: 'kms Sign failed' })).toBe(
      false,
    )
    expect(
      matches(pattern, {
        cause: 'ThrottlingException',
        detail: 'dynamodb Query failed: Throttling',
      }),
    ).toBe(false)
  })
})

describe('429 alarm', () => {
  it('counts the access-log line of a 429 answer, and no other status', () => {
    const { template } = synth()
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')) as {
      Properties: { FilterPattern: string; MetricTransformations: { MetricName: string }[] }
    }[]
    const filter = filters.find(
      (f) => f.Properties.MetricTransformations[0]?.MetricName === 'TooManyRequests',
    )
    expect(filter).toBeDefined()
    const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage')) as {
      Properties: { AccessLogSettings: { Format: string } }
    }[]
    // The access log line as API Gateway writes it: the format with its variables filled in.
    const line = (status: string) =>
      JSON.parse(
        stage?.Properties.AccessLogSettings.Format.replace('$context.status', status).replaceAll(
          /\$context\.[A-Za-z.]+/g,
          '-',
        ) ?? '{}',
      ) as Record<string, unknown>
    const pattern = filter?.Properties.FilterPattern ?? ''
    expect(matches(pattern, line('429'))).toBe(true)
    for (const status of ['200', '400', '401', '503']) {
      expect(matches(pattern, line(status)), status).toBe(false)
    }
  })
})
