import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import { jwksRoute } from '../jwks/handler.js'
import { loginRoute } from '../login/handler.js'
import { revokeRoute } from '../revoke/handler.js'
import { tokenRoute } from '../token/handler.js'
import { httpHandler, type Route, type RouteOptions } from './http.js'
import type { Runtime } from './runtime.js'

type Handler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>

interface LocalRoute {
  readonly method: string
  readonly path: string
  readonly name: string
  readonly handler: Handler
}

/** The routes of the HTTP API (DESIGN.md), each wrapped exactly as its Lambda is. */
export function localRoutes(runtime: Runtime): LocalRoute[] {
  const route = (method: string, path: string, name: string, fn: Route, options: RouteOptions) => ({
    method,
    path,
    name,
    handler: httpHandler(fn, options, runtime),
  })
  const jwks = { noStore: false }
  return [
    route('POST', '/login', 'login', loginRoute, { body: true }),
    route('POST', '/token', 'token', tokenRoute, { body: true }),
    route('POST', '/revoke', 'revoke', revokeRoute, { body: true }),
    route('GET', '/.well-known/jwks.json', 'jwks', jwksRoute, jwks),
    route('GET', '/.well-known/openid-configuration', 'jwks', jwksRoute, jwks),
    route('GET', '/.well-known/oauth-authorization-server', 'jwks', jwksRoute, jwks),
  ]
}

/** Bodies above this are refused before any handler runs (API Gateway's own limit is larger). */
const MAX_LOCAL_BODY = 1024 * 1024

/**
 * Serves the HTTP API on localhost by turning each request into the API
 * Gateway HTTP API (payload 2.0) event that the deployed handlers receive.
 */
export function createLocalServer(runtime: Runtime): Server {
  const routes = localRoutes(runtime)
  return createServer((req, res) => {
    serve(routes, runtime, req, res).catch((error) => {
      runtime.logger.error('local adapter failed', {
        cause: error instanceof Error ? error.name : 'unknown',
      })
      if (!res.headersSent)
        send(res, 500, { error: 'server_error', error_description: 'internal error' })
      else res.destroy()
    })
  })
}

export async function listen(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return (server.address() as AddressInfo).port
}

async function serve(
  routes: LocalRoute[],
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const method = req.method ?? 'GET'
  if (method === 'OPTIONS') return preflight(runtime, req, res)
  const route = routes.find((r) => r.path === url.pathname && r.method === method)
  if (!route) {
    const known = routes.some((r) => r.path === url.pathname)
    return known
      ? send(res, 405, { error: 'invalid_request', error_description: 'method not allowed' })
      : send(res, 404, { error: 'not_found', error_description: 'no such route' })
  }
  const body = await readBody(req)
  if (body === undefined) {
    return send(res, 413, {
      error: 'invalid_request',
      error_description: 'request body is too large',
    })
  }
  const event = toEvent(req, url, route, body)
  const result = await route.handler(event, lambdaContext(route.name))
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    if (value !== undefined) headers[name] = String(value) // API Gateway drops undefined values too
  }
  if (result.cookies?.length) headers['Set-Cookie'] = result.cookies
  res.writeHead(result.statusCode ?? 200, headers)
  res.end(result.body ?? '')
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  route: LocalRoute,
  body: Buffer,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'cookie' || value === undefined) continue
    headers[name] = Array.isArray(value) ? value.join(',') : value
  }
  const cookies = (req.headers.cookie ?? '')
    .split(';')
    .map((pair) => pair.trim())
    .filter(Boolean)
  const now = new Date()
  const routeKey = `${route.method} ${route.path}`
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(url.search ? { queryStringParameters: Object.fromEntries(url.searchParams) } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: route.method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length
      ? { body: body.toString('base64'), isBase64Encoded: true }
      : { isBase64Encoded: false }),
  }
}

function lambdaContext(functionName: string): Context {
  const deadline = Date.now() + 10_000
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }
}

/** CORS preflight, answered as the HTTP API's CORS configuration does in AWS. */
function preflight(runtime: Runtime, req: IncomingMessage, res: ServerResponse) {
  const origin = req.headers.origin
  if (!origin || !runtime.corsOrigins.includes(origin)) {
    res.writeHead(204, { Vary: 'Origin' })
    return res.end()
  }
  res.writeHead(204, {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': 'true',
    'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': 'Authorization, Content-Type',
    'Access-Control-Max-Age': '600',
    Vary: 'Origin',
  })
  return res.end()
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_LOCAL_BODY) return undefined
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(JSON.stringify(body))
}
