import { Logger } from '@aws-lambda-powertools/logger'
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { type HttpRequest, httpHandler } from '../../functions/adapters/http.js'
import { createObservability } from '../../functions/adapters/observability.js'
import { ConfigError, loadEdgeConfig } from '../../functions/config.js'
import { HTTP_FUNCTIONS } from '../../functions/routes.js'

const SECRET = 'edge-secret-for-this-test-only'

const event = (headers: Record<string, string>): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: 'GET /me',
    rawPath: '/me',
    rawQueryString: '',
    headers,
    isBase64Encoded: false,
    requestContext: {
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      http: { method: 'GET', path: '/me', sourceIp: '203.0.113.9' },
      requestId: 'r1',
    },
  }) as unknown as APIGatewayProxyEventV2

const context = {
  functionName: 'me',
  awsRequestId: 'r1',
  getRemainingTimeInMillis: () => 5000,
} as unknown as Context

/** A function behind the shared stack that records the request it was given. */
function recording(env: Record<string, string>) {
  const seen: HttpRequest[] = []
  const handler = httpHandler(
    async (request: HttpRequest) => {
      seen.push(request)
      return { status: 200, body: { ok: true } }
    },
    {},
    {
      ...createObservability(new Logger({ serviceName: 'token-service', logLevel: 'SILENT' })),
      corsOrigins: [],
      edge: loadEdgeConfig(env),
    },
    HTTP_FUNCTIONS.me.http,
  )
  return { handler, seen }
}

describe('behind the edge (CloudFront and AWS WAF)', () => {
  const env = { EDGE_ORIGIN_SECRET: SECRET, REQUEST_ORIGIN: 'https://d111.cloudfront.net' }

  it('refuses a request that went around the edge (no or a wrong X-Origin-Verify) with 403 access_denied, before the route runs', async () => {
    const { handler, seen } = recording(env)
    const attempts: Record<string, string>[] = [
      {},
      { 'x-origin-verify': 'guess' },
      { 'X-Origin-Verify': '' },
    ]
    for (const headers of attempts) {
      const response = await handler(event(headers), context)
      expect(response.statusCode, JSON.stringify(headers)).toBe(403)
      expect(JSON.parse(String(response.body))).toEqual({
        error: 'access_denied',
        error_description: 'use the service’s public address',
      })
    }
    expect(seen).toEqual([])
  })

  it('serves a request that carries the secret, whatever the header name’s case, at the edge’s address (the URL a DPoP proof names)', async () => {
    const { handler, seen } = recording(env)
    for (const name of ['x-origin-verify', 'X-Origin-Verify']) {
      const response = await handler(event({ [name]: SECRET }), context)
      expect(response.statusCode).toBe(200)
    }
    expect(seen.map((request) => request.url)).toEqual([
      'https://d111.cloudfront.net/me',
      'https://d111.cloudfront.net/me',
    ])
  })

  it('takes the client’s address from CloudFront-Viewer-Address, IPv4 or IPv6, not CloudFront’s own', async () => {
    const { handler, seen } = recording(env)
    for (const viewer of ['198.51.100.7:46532', '2001:db8::7:443']) {
      const headers = { 'x-origin-verify': SECRET, 'cloudfront-viewer-address': viewer }
      expect((await handler(event(headers), context)).statusCode).toBe(200)
    }
    expect(seen.map((request) => request.sourceIp)).toEqual(['198.51.100.7', '2001:db8::7'])
  })

  it('without the edge, checks no header and takes the host API Gateway saw', async () => {
    const { handler, seen } = recording({})
    expect((await handler(event({}), context)).statusCode).toBe(200)
    expect(seen[0]?.url).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/me')
    // Without the edge anyone could send the header: API Gateway's address stands.
    await handler(event({ 'cloudfront-viewer-address': '198.51.100.7:1' }), context)
    expect(seen[1]?.sourceIp).toBe('203.0.113.9')
  })

  it('refuses, at cold start, a REQUEST_ORIGIN with a path or that is no URL, naming the variable', () => {
    for (const origin of ['https://d111.cloudfront.net/', 'https://a.example/x', 'd111']) {
      expect(() => loadEdgeConfig({ REQUEST_ORIGIN: origin }), origin).toThrow(ConfigError)
      expect(() => loadEdgeConfig({ REQUEST_ORIGIN: origin }), origin).toThrow(/REQUEST_ORIGIN/)
    }
  })
})
