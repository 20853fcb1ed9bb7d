import { createHash, timingSafeEqual } from 'node:crypto'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import middy, { type MiddlewareObj } from '@middy/core'
import httpCors from '@middy/http-cors'
import httpHeaderNormalizer from '@middy/http-header-normalizer'
import httpSecurityHeaders from '@middy/http-security-headers'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import type { EdgeConfig } from '../config.js'
import type { Client } from '../core/clients.js'
import {
  InvalidRequest,
  NotThroughEdge,
  OAuthError,
  OriginNotAllowed,
  PayloadTooLarge,
  ServerError,
  TemporarilyUnavailable,
  UnsupportedMediaType,
} from '../core/errors.js'
import type { HomeAnswer } from '../core/regions.js'
import type { RequestOrigin } from '../core/security-events.js'
import { CORS, type HttpOptions } from '../routes.js'
import type { Observability } from './observability.js'

/** What a route sees: a parsed, normalized request. */
export interface HttpRequest {
  readonly method: string
  readonly path: string
  /**
   * The URI the request reached us at, without its query: the host the client
   * called (`requestContext.domainName`) and the path as sent. API Gateway
   * serves HTTPS only; local mode says `http` in `X-Forwarded-Proto`.
   */
  readonly url: string
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>
  readonly cookies: ReadonlyMap<string, string>
  /** Body parameters (form or JSON), all strings, null prototype. Empty without a body. */
  readonly params: Readonly<Record<string, string>>
  readonly pathParameters: Readonly<Record<string, string>>
  /** `requestContext.authorizer` as API Gateway set it (bearer routes), else undefined. */
  readonly authorizer?: unknown
  /** The client's IP address as API Gateway saw it (`requestContext.http.sourceIp`). */
  readonly sourceIp?: string
  /**
   * The event as it was delivered, for a refresh forwarded to its home region as is
   * (token/route.ts).
   */
  readonly event: unknown
  /**
   * Set only on a request another region forwarded to its session's home (the event's
   * `forwardedFrom`, a member API Gateway never sets): it is decided here, never forwarded again.
   */
  readonly forwardedFrom?: string
}

export interface HttpResponse {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Record<string, string>
  /** Set-Cookie values. */
  readonly cookies?: string[]
  /** The answer of another region's function (a forwarded refresh), returned as it is. */
  readonly verbatim?: HomeAnswer
}

/** A route: the parsed request and the ports its function was built with. */
export type Route<D> = (request: HttpRequest, deps: D) => Promise<HttpResponse>

export const MAX_BODY_BYTES = 8 * 1024

/** What the shared stack needs besides the route: logs and metrics, and the CORS allow-list. */
export interface HttpStack extends Pick<Observability, 'logger' | 'metrics'> {
  readonly corsOrigins: readonly string[]
  /** Behind the edge: the secret header every request must carry, and the host clients call. */
  readonly edge?: EdgeConfig
}

export type HttpHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>

/**
 * Wraps a route in the one middy stack every HTTP function shares: logging
 * context, metrics, header normalization, body parsing, security headers, CORS
 * and the single OAuth error mapper. Builds nothing else and does no I/O.
 */
export function httpHandler<D>(
  route: Route<D>,
  deps: D,
  stack: HttpStack,
  options: HttpOptions,
): HttpHandler {
  const parsed = new WeakMap<object, Record<string, string>>()

  const core = async (
    event: APIGatewayProxyEventV2,
  ): Promise<APIGatewayProxyStructuredResultV2> => {
    // Around the edge (CloudFront and WAF) straight to execute-api: refused before any work.
    if (stack.edge?.secret !== undefined && !sameSecret(event, stack.edge.secret)) {
      throw new NotThroughEdge()
    }
    const request = toRequest(event, parsed.get(event) ?? Object.create(null), stack.edge?.origin)
    const response = await route(request, deps)
    return toResult(response, options.noStore)
  }

  // Answer 503 shortly before Lambda's own timeout would cut the request off.
  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(core, {
    timeoutEarlyInMillis: 250,
  })
    .use(injectLambdaContext(stack.logger, { resetKeys: true }))
    .use(logMetrics(stack.metrics))
    .use(httpHeaderNormalizer())
    .use(
      httpCors({
        origins: [...stack.corsOrigins],
        credentials: CORS.allowCredentials,
        headers: CORS.allowHeaders.join(', '),
        exposeHeaders: CORS.exposeHeaders.join(', '),
        methods: CORS.allowMethods.join(', '),
        maxAge: CORS.maxAgeSeconds,
      }),
    )
    .use(httpSecurityHeaders({ reportTo: false }))
    .use(oauthErrors(stack, options.noStore))
  if (options.body) handler.use(parseBody(parsed))
  return handler as unknown as HttpHandler
}

/**
 * The headers with lower-case names, read from the event itself: whatever ran before
 * (middy's header normaliser, or nothing), each reader finds `content-type` the same.
 */
function lowerCaseHeaders(event: APIGatewayProxyEventV2): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value
  }
  return headers
}

/** The `X-Origin-Verify` header holds `secret`, compared in constant time. */
function sameSecret(event: APIGatewayProxyEventV2, secret: string): boolean {
  const given = lowerCaseHeaders(event)['x-origin-verify']
  if (given === undefined) return false
  // Digests of equal length: timingSafeEqual refuses buffers of different lengths.
  const digest = (text: string) => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(given), digest(secret))
}

/**
 * The client's address: behind the edge (whose secret header was checked), the one
 * CloudFront saw (`CloudFront-Viewer-Address: <ip>:<port>`); else API Gateway's.
 */
function sourceIpOf(
  event: APIGatewayProxyEventV2,
  headers: Readonly<Record<string, string>>,
  origin: string | undefined,
): { sourceIp: string } | undefined {
  const viewer = headers['cloudfront-viewer-address']
  if (origin !== undefined && viewer?.includes(':')) {
    return { sourceIp: viewer.slice(0, viewer.lastIndexOf(':')) }
  }
  const seen = event.requestContext?.http?.sourceIp
  return seen ? { sourceIp: seen } : undefined
}

/** `origin`: the scheme and host clients call when a proxy (the edge) stands before API Gateway. */
function toRequest(
  event: APIGatewayProxyEventV2,
  params: Record<string, string>,
  origin?: string,
): HttpRequest {
  const headers = lowerCaseHeaders(event)
  const forwarded = headers['x-forwarded-proto']?.split(',').at(-1)?.trim().toLowerCase()
  const seen = `${forwarded === 'http' ? 'http' : 'https'}://${event.requestContext?.domainName ?? headers.host}`
  return {
    method: event.requestContext?.http?.method ?? 'GET',
    path: event.rawPath ?? '/',
    url: `${origin ?? seen}${event.rawPath ?? '/'}`,
    headers,
    cookies: parseCookies(event.cookies ?? (headers.cookie ? headers.cookie.split(';') : [])),
    params,
    pathParameters: { ...(event.pathParameters ?? {}) } as Record<string, string>,
    authorizer: (event.requestContext as { authorizer?: unknown } | undefined)?.authorizer,
    ...(sourceIpOf(event, headers, origin) ?? {}),
    event,
    ...forwardedFrom(event),
  }
}

/** The member a forwarding region adds to the event (adapters/home-region.ts). */
export const FORWARDED_FROM = 'forwardedFrom'

function forwardedFrom(event: APIGatewayProxyEventV2): { forwardedFrom?: string } {
  const from = (event as unknown as Record<string, unknown>)[FORWARDED_FROM]
  return typeof from === 'string' ? { forwardedFrom: from } : {}
}

function toResult(response: HttpResponse, noStore: boolean): APIGatewayProxyStructuredResultV2 {
  if (response.verbatim) {
    const { statusCode, headers, cookies, body } = response.verbatim
    return {
      statusCode,
      ...(headers && { headers: { ...headers } }),
      ...(cookies?.length && { cookies: [...cookies] }),
      body: body ?? '',
    }
  }
  const headers: Record<string, string> = {
    ...(noStore ? { 'Cache-Control': 'no-store', Pragma: 'no-cache' } : {}),
    ...response.headers,
  }
  if (response.body !== undefined) headers['Content-Type'] = 'application/json'
  return {
    statusCode: response.status,
    headers,
    ...(response.cookies?.length ? { cookies: response.cookies } : {}),
    body: response.body === undefined ? '' : JSON.stringify(response.body),
  }
}

/** Cookie pairs as API Gateway gives them; the first of a repeated name wins. */
function parseCookies(pairs: readonly string[]): Map<string, string> {
  const cookies = new Map<string, string>()
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    if (at <= 0) continue
    const name = pair.slice(0, at).trim()
    if (!cookies.has(name)) cookies.set(name, pair.slice(at + 1).trim())
  }
  return cookies
}

/**
 * Body parsing of our own rather than @middy/http-json-body-parser and
 * http-urlencode-body-parser: those answer malformed JSON with 415 instead of
 * 400, copy form fields onto a plain object (so `__proto__=` reaches its
 * setter), and turn repeated parameters into arrays that RFC 6749 §3.1 forbids.
 * It depends on no other middleware: it reads the header names in any case
 * itself. Exported for its test, which runs it alone.
 */
export function parseBody(
  parsed: WeakMap<object, Record<string, string>>,
): MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    before: async (request) => {
      const { event } = request
      refuseCredentialsInQuery(event)
      const raw = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8')
      if (raw.length > MAX_BODY_BYTES) throw new PayloadTooLarge(MAX_BODY_BYTES)
      const contentType = lowerCaseHeaders(event)['content-type'] ?? ''
      const type = contentType.split(';')[0]?.trim().toLowerCase()
      const text = raw.toString('utf8')
      if (type === 'application/x-www-form-urlencoded') parsed.set(event, parseForm(text))
      else if (type === 'application/json') parsed.set(event, parseJson(text))
      else throw new UnsupportedMediaType()
    },
  }
}

function parseForm(text: string): Record<string, string> {
  const params: Record<string, string> = Object.create(null)
  for (const [name, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(params, name)) throw new InvalidRequest('a request parameter is repeated')
    params[name] = value
  }
  return params
}

function parseJson(text: string): Record<string, string> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new InvalidRequest('request body is not valid JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRequest('request body must be a JSON object')
  }
  // JSON.parse keeps the last of a repeated key: refuse it, as a repeated form parameter.
  const names = topLevelNames(text)
  if (new Set(names).size !== names.length) {
    throw new InvalidRequest('a request parameter is repeated')
  }
  const params: Record<string, string> = Object.create(null)
  for (const [name, member] of Object.entries(value)) {
    if (typeof member !== 'string') throw new InvalidRequest('request parameters must be strings')
    // JSON can carry lone surrogates, which UTF-8 cannot: two different passwords
    // would hash alike, and DynamoDB refuses such strings.
    if (LONE_SURROGATE.test(name) || LONE_SURROGATE.test(member)) {
      throw new InvalidRequest('request parameters must be well-formed Unicode')
    }
    params[name] = member
  }
  return params
}

const LONE_SURROGATE = /\p{Cs}/u

/**
 * The member names of a JSON object's top level, repeats included, each
 * decoded (`"a"` and `"\u0061"` are one name). Only for a text JSON.parse
 * accepted as an object: a scan of strings and brackets, nothing more.
 */
function topLevelNames(text: string): string[] {
  const names: string[] = []
  let depth = 0
  let nameNext = false
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    if (char === '"') {
      let end = i + 1
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1
      if (depth === 1 && nameNext) names.push(JSON.parse(text.slice(i, end + 1)) as string)
      nameNext = false
      i = end
    } else if (char === '{' || char === '[') {
      depth++
      nameNext = depth === 1
    } else if (char === '}' || char === ']') {
      depth--
    } else if (char === ',') {
      nameNext = depth === 1
    }
  }
  return names
}

/** Query parameters that carry credentials (any letter case). */
const CREDENTIAL_PARAMS = new Set([
  'username',
  'password',
  'refresh_token',
  'token',
  'access_token',
  'client_secret',
  'current_password',
  'new_password',
])

/**
 * Credentials belong in the body (RFC 6749 §3.2, RFC 6819 §5.4.1): URLs end
 * up in proxy, CDN and browser logs. The request is refused, and neither the
 * value nor the query string is logged.
 */
function refuseCredentialsInQuery(event: APIGatewayProxyEventV2): void {
  const names = [
    ...new URLSearchParams(event.rawQueryString ?? '').keys(),
    ...Object.keys(event.queryStringParameters ?? {}),
  ]
  if (names.some((name) => CREDENTIAL_PARAMS.has(name.trim().toLowerCase()))) {
    throw new InvalidRequest('credentials must be sent in the request body, never in the URL')
  }
}

/** The one place that turns errors into responses: OAuth shape, nothing leaked. */
function oauthErrors(stack: HttpStack, noStore: boolean): MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    onError: async (request) => {
      const error = toOAuthError(request.error)
      const fields = {
        status: error.status,
        error: error.error,
        detail: error.detail,
        ...(error.check === undefined ? {} : { check: error.check }),
      }
      if (error.status >= 500) {
        const cause = error.cause instanceof Error ? error.cause.name : undefined
        stack.logger.error('request failed', { ...fields, cause })
      } else {
        stack.logger.info('request refused', fields)
      }
      request.response = toResult(
        {
          status: error.status,
          headers: error.headers,
          body: { error: error.error, error_description: error.description },
        },
        noStore,
      )
    },
  }
}

function toOAuthError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error
  if (error instanceof Error && error.name === 'TimeoutError') {
    return new TemporarilyUnavailable('function ran out of time', { cause: error })
  }
  // Errors from middy middlewares carry a statusCode; their messages are generic.
  const status = (error as { statusCode?: unknown } | null)?.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new InvalidRequest('the request is malformed', (error as Error).message)
  }
  return new ServerError(error instanceof Error ? error.name : 'unknown error', error)
}

/** Where a request came from, for the security events: source IP and user agent, where known. */
export const requestOrigin = (request: HttpRequest): RequestOrigin => ({
  ...(request.sourceIp ? { sourceIp: request.sourceIp } : {}),
  ...(request.headers['user-agent'] ? { userAgent: request.headers['user-agent'] } : {}),
})

/** A required string parameter, or `invalid_request` naming it. */
export function param(request: HttpRequest, name: string): string {
  const value = request.params[name]
  if (value === undefined || value === '') throw new InvalidRequest(`${name} is required`)
  return value
}

export const optionalParam = (request: HttpRequest, name: string): string | undefined =>
  request.params[name] || undefined

/** The refresh-token cookie of a cookie-mode client (`__Host-`: Secure, host-only, Path=/). */
export const refreshCookieName = (client: Client) => `__Host-rt_${client.clientId}`

export function refreshCookie(
  client: Client,
  token: string,
  expiresAt: number,
  now: number,
): string {
  const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000))
  return `${refreshCookieName(client)}=${token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAge}`
}

export const clearedRefreshCookie = (client: Client) =>
  `${refreshCookieName(client)}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`

/** CSRF defence for cookie mode: the browser's Origin must be one of the client's. */
export function assertOrigin(request: HttpRequest, client: Client): void {
  const origin = request.headers.origin
  if (!origin || !client.allowedOrigins.includes(origin)) throw new OriginNotAllowed()
}
