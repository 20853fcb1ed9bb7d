import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type {
  APIGatewayProxyEventV2,
  APIGatewayRequestAuthorizerEventV2,
  Context,
} from 'aws-lambda'
import type { HttpHandler } from '../functions/adapters/http.js'
import type { Authorizer } from '../functions/authorizer/authorizer.js'
import { InvalidToken, OAuthError, ServerError } from '../functions/core/errors.js'
import { CORS, ROUTES, type RouteSpec } from '../functions/routes.js'
import type { LocalService } from './wiring.js'

interface LocalRoute extends RouteSpec {
  readonly handler: HttpHandler
}

/**
 * The routes of the HTTP API (functions/routes.ts), each with its function's
 * handler; routes served by one function share one handler, as in AWS.
 */
export const localRoutes = (service: LocalService): LocalRoute[] =>
  ROUTES.map((route) => ({ ...route, handler: service.handlers[route.function] }))

/** Bodies above this are refused before any handler runs (API Gateway's own limit is larger). */
const MAX_LOCAL_BODY = 1024 * 1024

/** A static file served by the local server (the demo page), by exact path. */
export interface LocalAsset {
  readonly contentType: string
  readonly body: string | Uint8Array
}

export interface LocalServerOptions {
  /** Static files, served on GET/HEAD of their exact path, ahead of the API routes. */
  readonly assets?: ReadonlyMap<string, LocalAsset>
  /**
   * How long each request may run, as a Lambda timeout: the handlers answer 503 shortly
   * before it. Tests on a loaded machine raise it. @default 10000
   */
  readonly timeoutMs?: number
}

/** Headers of every static file: never cached, never sniffed, scripts only from this origin. */
const ASSET_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'self'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
} as const

/**
 * Serves the HTTP API on localhost by turning each request into the API
 * Gateway HTTP API (payload 2.0) event that the deployed handlers receive.
 */
export function createLocalServer(service: LocalService, options: LocalServerOptions = {}): Server {
  const routes = localRoutes(service)
  const assets = options.assets ?? new Map<string, LocalAsset>()
  const timeoutMs = options.timeoutMs ?? 10_000
  return createServer((req, res) => {
    // The service's clock, not the machine's: a test's fake clock shows here as the server's
    // time, which DPoP clients date their proofs by.
    res.setHeader('Date', new Date(service.clock.now()).toUTCString())
    serve({ routes, assets, service, timeoutMs }, req, res).catch((error) => {
      service.observability.logger.error('local adapter failed', {
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

interface ServerParts {
  readonly routes: LocalRoute[]
  readonly assets: ReadonlyMap<string, LocalAsset>
  readonly service: LocalService
  readonly timeoutMs: number
}

async function serve(
  { routes, assets, service, timeoutMs }: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const method = req.method ?? 'GET'
  if (method === 'OPTIONS') return preflight(service, req, res)
  const asset = assets.get(url.pathname)
  if (asset && (method === 'GET' || method === 'HEAD')) return serveAsset(asset, method, res)
  let pathParameters: Record<string, string> | undefined
  const route = routes.find((r) => {
    if (r.method !== method) return false
    pathParameters = matchPath(r.path, url.pathname)
    return pathParameters !== undefined
  })
  if (!route) {
    const known = routes.some((r) => matchPath(r.path, url.pathname) !== undefined)
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
  const event = toEvent(req, url, route, body, pathParameters ?? {}, new URL(service.issuer))
  if (route.auth === 'bearer') {
    const denied = await authorize(service, event, timeoutMs)
    if (denied) return sendError(res, denied, corsHeaders(service, req))
  }
  const result = await route.handler(event, lambdaContext(route.function, timeoutMs))
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    if (value !== undefined) headers[name] = String(value) // API Gateway drops undefined values too
  }
  if (result.cookies?.length) headers['Set-Cookie'] = result.cookies
  res.writeHead(result.statusCode ?? 200, headers)
  res.end(result.body ?? '')
}

/** The path parameters if `pathname` matches the route key path, else undefined. */
function matchPath(pattern: string, pathname: string): Record<string, string> | undefined {
  const want = pattern.split('/')
  const got = pathname.split('/')
  if (want.length !== got.length) return undefined
  const parameters: Record<string, string> = {}
  for (const [i, segment] of want.entries()) {
    const value = got[i] as string
    const name = /^\{(\w+)\}$/.exec(segment)?.[1]
    if (name === undefined) {
      if (segment !== value) return undefined
    } else {
      if (value === '') return undefined
      try {
        parameters[name] = decodeURIComponent(value)
      } catch {
        return undefined
      }
    }
  }
  return parameters
}

/**
 * Runs the Lambda authorizer as API Gateway does for a route behind it: no
 * identity source means no call; a deny stops the request; an allow hands the
 * context to the route as `requestContext.authorizer.lambda`. Where API
 * Gateway answers 401/403 `{"message": ...}`, local mode answers RFC 6750's
 * 401 with `WWW-Authenticate` (docs/api.md says how AWS differs).
 */
async function authorize(
  service: LocalService,
  event: APIGatewayProxyEventV2,
  timeoutMs: number,
): Promise<OAuthError | undefined> {
  const authorization = event.headers.authorization
  if (!authorization) return new InvalidToken('no_authorization_header')
  const { body: _body, isBase64Encoded: _encoded, ...request } = event
  const authorizerEvent: APIGatewayRequestAuthorizerEventV2 = {
    ...request,
    type: 'REQUEST',
    routeArn: `arn:aws:execute-api:local:000000000000:local/$default/${event.requestContext.http.method}${event.rawPath}`,
    identitySource: [authorization],
    cookies: event.cookies ?? [],
  }
  let result: Awaited<ReturnType<Authorizer['http']>>
  // Its log lines name it and this request, as the authorizer function's do in Lambda.
  service.authorizerLogger.addContext(
    lambdaContext(service.strict ? 'authorizerStrict' : 'authorizer', timeoutMs),
  )
  try {
    result = await service.authorizer.http(authorizerEvent)
  } catch (error) {
    // API Gateway answers 500 here; local mode keeps our own 503 for a dependency fault.
    const failure =
      error instanceof OAuthError ? error : new ServerError('authorizer failed', error)
    service.authorizerLogger.error('authorizer failed', {
      status: failure.status,
      detail: failure.detail,
      cause: error instanceof Error ? error.name : 'unknown',
    })
    return failure
  }
  if (!result.isAuthorized) return new InvalidToken('authorizer_denied')
  Object.assign(event.requestContext, { authorizer: { lambda: result.context ?? {} } })
  return undefined
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  route: LocalRoute,
  body: Buffer,
  pathParameters: Record<string, string>,
  issuer: URL,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'cookie' || value === undefined) continue
    headers[name] = Array.isArray(value) ? value.join(',') : value
  }
  // As API Gateway sets it (`https` there): what a DPoP proof's `htu` starts with.
  headers['x-forwarded-proto'] = issuer.protocol.slice(0, -1)
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
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      // API Gateway's own name for the API, never the client's Host header (which a
      // client chooses): a DPoP proof's `htu` is checked against it.
      domainName: issuer.host,
      domainPrefix: issuer.hostname.split('.')[0] ?? 'localhost',
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

export function lambdaContext(functionName: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs
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
function preflight(service: LocalService, req: IncomingMessage, res: ServerResponse) {
  const origin = req.headers.origin
  if (!origin || !service.corsOrigins.includes(origin)) {
    res.writeHead(204, { Vary: 'Origin' })
    return res.end()
  }
  res.writeHead(204, {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': String(CORS.allowCredentials),
    'Access-Control-Allow-Methods': CORS.allowMethods.join(', '),
    'Access-Control-Allow-Headers': CORS.allowHeaders.join(', '),
    'Access-Control-Max-Age': String(CORS.maxAgeSeconds),
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

function serveAsset(asset: LocalAsset, method: string, res: ServerResponse) {
  const body = typeof asset.body === 'string' ? Buffer.from(asset.body, 'utf8') : asset.body
  res.writeHead(200, {
    ...ASSET_HEADERS,
    'Content-Type': asset.contentType,
    'Content-Length': String(body.byteLength),
  })
  res.end(method === 'HEAD' ? undefined : body)
}

/** The CORS headers the HTTP API adds to its own answers (here: authorizer refusals). */
function corsHeaders(service: LocalService, req: IncomingMessage): Record<string, string> {
  const origin = req.headers.origin
  if (!origin || !service.corsOrigins.includes(origin)) return { Vary: 'Origin' }
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': String(CORS.allowCredentials),
    'Access-Control-Expose-Headers': CORS.exposeHeaders.join(', '),
    Vary: 'Origin',
  }
}

function sendError(res: ServerResponse, error: OAuthError, headers: Record<string, string>) {
  res.writeHead(error.status, {
    ...headers,
    ...error.headers,
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
  })
  res.end(JSON.stringify({ error: error.error, error_description: error.description }))
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(JSON.stringify(body))
}
