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
import { KeySet } from './keys.js'
import { SessionCheck } from './strict.js'
import { TokenVerifier, type VerifiedClaims } from './verify.js'

export type HttpAuthorizerResult = APIGatewaySimpleAuthorizerResult & {
  context?: ReturnType<typeof httpContext>
}

export interface Authorizer {
  /**
   * Verifies the bearer token of an `Authorization` header value. Throws
   * `InvalidToken` for anything it refuses, `TemporarilyUnavailable` when a
   * key or (strict mode) the session cannot be read.
   */
  authorize(authorization: string | undefined): Promise<VerifiedClaims>
  /** HTTP API Lambda authorizer, payload format 2.0, simple responses. */
  http(event: APIGatewayRequestAuthorizerEventV2): Promise<HttpAuthorizerResult>
  /** REST API TOKEN or REQUEST authorizer: an IAM policy, or `Unauthorized` (401). */
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
  // The header may carry "Bearer " and some spaces around the token.
  const maxHeader = config.maxTokenBytes + 32

  async function authorize(authorization: string | undefined): Promise<VerifiedClaims> {
    if (!authorization) throw new InvalidToken('no Authorization header')
    if (authorization.length > maxHeader) throw new InvalidToken('token too large')
    const token = bearerToken(authorization)
    if (!token) throw new InvalidToken('not a Bearer credential')
    const claims = await verifier.verify(token)
    // RFC 9449 §7.2: a token bound to a key is useless without a proof of it, so never bearer.
    if (claims.jkt !== undefined) throw new InvalidToken('DPoP-bound token sent as Bearer')
    if (sessions && !(await sessions.isLive(claims.sub, claims.sid))) {
      throw new InvalidToken('session ended')
    }
    return claims
  }

  /** Refusals are logged (the reason only, never the token) and turned into a deny. */
  async function verdict(authorization: string | undefined): Promise<VerifiedClaims | undefined> {
    try {
      return await authorize(authorization)
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error // a fault: API Gateway answers 500
      logger.info('token refused', { reason: error.detail })
      return undefined
    }
  }

  return {
    authorize,
    async http(event) {
      const claims = await verdict(event.headers?.authorization ?? event.identitySource?.[0])
      return claims ? { isAuthorized: true, context: httpContext(claims) } : { isAuthorized: false }
    },
    async rest(event) {
      const claims = await verdict(
        event.type === 'TOKEN'
          ? event.authorizationToken
          : headerOf(event.headers, 'authorization'),
      )
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
 * RFC 6750 §2.1: `Bearer` (any case), spaces, then the token; surrounding
 * spaces allowed. The verifier then refuses any character a JWS cannot hold.
 */
function bearerToken(authorization: string): string | undefined {
  if (authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') {
    return undefined
  }
  const token = authorization.slice(7).trim()
  return token === '' || token.includes(' ') ? undefined : token
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
