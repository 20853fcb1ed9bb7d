import type {
  APIGatewayAuthorizerResult,
  APIGatewayRequestAuthorizerEvent,
  APIGatewayRequestAuthorizerEventV2,
  APIGatewaySimpleAuthorizerResult,
  APIGatewayTokenAuthorizerEvent,
} from 'aws-lambda'
import type { AuthorizerConfig } from '../config.js'
import type { Clock } from '../core/clock.js'
import { InvalidToken } from '../core/errors.js'
import type { PublicJwk, SessionStateReader } from '../core/ports.js'
import { httpContext, restContext } from './context.js'
import { authorizeRequest, ProofOfPossession, type ProtectedRequest } from './dpop.js'
import { KeySet } from './keys.js'
import { SessionCheck } from './strict.js'
import { TokenVerifier, type VerifiedClaims } from './verify.js'

export type HttpAuthorizerResult = APIGatewaySimpleAuthorizerResult & {
  context?: ReturnType<typeof httpContext>
}

export interface Authorizer {
  /**
   * Verifies the token of an `Authorization` header value, `Bearer` or, with
   * the request it came with, `DPoP` (RFC 9449 §7: the proof in `request`).
   * Without `request`, a DPoP-bound token is refused whatever its scheme.
   * Throws `InvalidToken` for anything it refuses, `TemporarilyUnavailable`
   * when a key or (strict mode) the session cannot be read.
   */
  authorize(authorization: string | undefined, request?: ProtectedRequest): Promise<VerifiedClaims>
  /** HTTP API Lambda authorizer, payload format 2.0, simple responses. */
  http(event: APIGatewayRequestAuthorizerEventV2): Promise<HttpAuthorizerResult>
  /**
   * REST API TOKEN or REQUEST authorizer: an IAM policy, or `Unauthorized` (401).
   * A TOKEN authorizer sees the `Authorization` header only, so it refuses DPoP.
   */
  rest(
    event: APIGatewayTokenAuthorizerEvent | APIGatewayRequestAuthorizerEvent,
  ): Promise<APIGatewayAuthorizerResult>
  /** Loads the keys ahead of the first request (cold start). Never rejects. */
  warm(): Promise<void>
}

export interface AuthorizerDeps {
  readonly config: AuthorizerConfig
  /** Every verification key, fetched afresh (the JWKS, or local mode's key). */
  readonly fetchKeys: () => Promise<readonly PublicJwk[]>
  readonly clock: Clock
  /** Refusals are logged at info (the reason only), a failed warm-up at warn. */
  readonly logger: {
    info(message: string, fields: Record<string, unknown>): void
    warn(message: string, fields: Record<string, unknown>): void
  }
  /** Strict mode: the session check, and how long a verdict is reused. @default off */
  readonly strict?: { readonly sessions: SessionStateReader; readonly cacheSeconds: number }
}

/**
 * Builds the authorizer (docs/design.md "Authorizer") from its ports. Nothing
 * here does I/O until `warm` or a request.
 */
export function createAuthorizer(deps: AuthorizerDeps): Authorizer {
  const { config, clock, logger } = deps
  const keys = new KeySet({ fetch: deps.fetchKeys, clock })
  const verifier = new TokenVerifier(keys, clock, {
    issuer: config.issuer,
    audiences: config.audiences,
    skewSeconds: config.skewSeconds,
    maxTokenBytes: config.maxTokenBytes,
    maxLifetimeSeconds: config.maxLifetimeSeconds,
    answerCacheSeconds: config.answerCacheSeconds,
  })
  const sessions = deps.strict
    ? new SessionCheck({
        reader: deps.strict.sessions,
        clock,
        cacheSeconds: deps.strict.cacheSeconds,
      })
    : undefined
  const possession = new ProofOfPossession({
    clock,
    settings: { skewSeconds: config.skewSeconds },
  })
  // The header may carry "Bearer " and some spaces around the token.
  const maxHeader = config.maxTokenBytes + 32

  async function authorize(
    authorization: string | undefined,
    request: ProtectedRequest = NO_REQUEST,
  ): Promise<VerifiedClaims> {
    if (authorization && authorization.length > maxHeader) {
      throw new InvalidToken('token_too_large')
    }
    const claims = await authorizeRequest({ verifier, possession }, authorization, request)
    if (sessions && !(await sessions.isLive(claims.sub, claims.sid))) {
      throw new InvalidToken('session_ended')
    }
    return claims
  }

  /** Refusals are logged (the reason only, never the token) and turned into a deny. */
  async function verdict(
    authorization: string | undefined,
    request: ProtectedRequest,
  ): Promise<VerifiedClaims | undefined> {
    try {
      return await authorize(authorization, request)
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error // a fault: API Gateway answers 500
      logger.info('token refused', {
        reason: error.code,
        ...(error.check === undefined ? {} : { check: error.check }),
      })
      return undefined
    }
  }

  return {
    authorize,
    async http(event) {
      const claims = await verdict(
        event.headers?.authorization ?? event.identitySource?.[0],
        httpRequestOf(event, config.requestOrigin),
      )
      return claims ? { isAuthorized: true, context: httpContext(claims) } : { isAuthorized: false }
    },
    async rest(event) {
      const claims =
        event.type === 'TOKEN'
          ? await verdict(event.authorizationToken, NO_REQUEST)
          : await verdict(headerOf(event.headers, 'authorization'), restRequestOf(event))
      // API Gateway turns exactly this message into 401 (and its UNAUTHORIZED gateway response).
      if (!claims) throw new Error('Unauthorized')
      return {
        principalId: claims.sub,
        policyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Action: 'execute-api:Invoke',
              Effect: 'Allow',
              Resource: wholeStage(event.methodArn),
            },
          ],
        },
        context: restContext(claims),
      }
    },
    async warm() {
      await keys.load().catch((error: unknown) => {
        logger.warn('authorizer keys not loaded at cold start', {
          cause: error instanceof Error ? error.name : 'unknown',
        })
      })
    },
  }
}

/**
 * Where only the `Authorization` header is known (a REST TOKEN authorizer): no
 * proof can be checked, so a DPoP-bound token is refused under either scheme.
 */
const NO_REQUEST: ProtectedRequest = { dpop: undefined, method: '', uri: '' }

/**
 * The request as the client addressed it, for the proof's `htm` and `htu`
 * (RFC 9449 §4.3): the host it called (a custom domain, or the execute-api
 * one) and the path as sent, a named stage or a custom domain's base path
 * included. API Gateway serves HTTPS only; local mode says `http` in
 * `X-Forwarded-Proto`, as API Gateway says `https` there.
 */
function httpRequestOf(
  event: APIGatewayRequestAuthorizerEventV2,
  requestOrigin?: string,
): ProtectedRequest {
  const { headers, requestContext, rawPath } = event
  const seen = `${scheme(headers?.['x-forwarded-proto'])}://${requestContext?.domainName}`
  return {
    dpop: headers?.dpop,
    method: requestContext?.http?.method ?? '',
    // Behind the edge, the client called the edge's host, not the execute-api one.
    uri: `${requestOrigin ?? seen}${rawPath}`,
  }
}

/** The same for a REST REQUEST authorizer: `requestContext.path` is the path as sent. */
function restRequestOf(event: APIGatewayRequestAuthorizerEvent): ProtectedRequest {
  const { requestContext } = event
  return {
    dpop: headerOf(event.headers, 'dpop'),
    method: event.httpMethod ?? '',
    uri: `${scheme(headerOf(event.headers, 'x-forwarded-proto'))}://${requestContext?.domainName}${requestContext?.path}`,
  }
}

/** `http` only when the last proxy said so; anything else is API Gateway's HTTPS. */
function scheme(forwardedProto: string | undefined): 'http' | 'https' {
  return forwardedProto?.split(',').at(-1)?.trim().toLowerCase() === 'http' ? 'http' : 'https'
}

function headerOf(
  headers: Record<string, string | undefined> | null | undefined,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === name) return value
  }
  return undefined
}

/**
 * `arn:aws:execute-api:region:account:api/stage/*`: a policy for the whole
 * stage, so that a cached policy (REST authorizers cache per token) also
 * allows the caller's next request to another method.
 */
function wholeStage(methodArn: string): string {
  const [api, stage] = methodArn.split('/')
  return `${api}/${stage}/*`
}
