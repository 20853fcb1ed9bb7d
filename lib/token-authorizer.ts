import { Duration, type RemovalPolicy, Token } from 'aws-cdk-lib'
import {
  HttpLambdaAuthorizer,
  HttpLambdaResponseType,
} from 'aws-cdk-lib/aws-apigatewayv2-authorizers'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type * as logs from 'aws-cdk-lib/aws-logs'
import { Construct } from 'constructs'
import { CLIENT_DEFAULTS, type ClientConfig } from '../functions/core/clients.js'
import { LAMBDA_FUNCTIONS } from '../functions/routes.js'
import { SETTING_RULES, SETTINGS } from '../functions/settings.js'
import type { TokenServiceConfig } from './config-schema.js'
import { DEFAULTS } from './defaults.js'
import { grantStore } from './table-access.js'
import { functionEnvironment, rangedSetting, TokenFunction } from './token-function.js'

/**
 * The Lambda authorizer's verification settings (its `AUTHORIZER_*` variables): the config
 * file's `authorizerSettings`, whose keys, bounds and defaults lib/config-schema.ts takes
 * from functions/settings.ts (docs/configuration.md). `audiences`: the `aud` values
 * accepted, each some client's `audience` (an API behind its own authorizer names its
 * own); by default every client's.
 */
export type AuthorizerSettings = NonNullable<TokenServiceConfig['authorizerSettings']>

export interface TokenAuthorizerProps extends AuthorizerSettings {
  /** The `iss` the access tokens must carry: the token service's issuer, an https URL. */
  readonly issuer: string
  /** The token service's clients: their `audience` values are the accepted `aud`, unless `audiences`. */
  readonly clients: readonly ClientConfig[]
  /**
   * Where the verification keys are fetched (an https URL, refused otherwise at synth;
   * cached per container; an unknown `kid` refetches at most once a minute).
   * @default `${issuer}/.well-known/jwks.json`
   */
  readonly jwksUri?: string
  /**
   * Strict revocation: also check that the token's session is still active (one
   * strongly consistent read of the session and its user, cached a few seconds
   * per container), so that logout ends access within seconds instead of at
   * token expiry.
   * @default false
   */
  readonly strict?: boolean
  /**
   * The token service's table (`Table.fromTableName(...)` elsewhere): strict mode
   * reads the session and its user there.
   * @default none; required with `strict`
   */
  readonly table?: dynamodb.ITable
  /**
   * The token service's `tokenBackdateSeconds` (`TOKEN_BACKDATE_SECONDS`), 0 to 60:
   * its tokens' `exp − iat` is the client's TTL plus this. With the longest client
   * TTL it sets `AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS`.
   * @default 5 (DEFAULTS.tokenBackdateSeconds)
   */
  readonly tokenBackdateSeconds?: number
  /**
   * How long API Gateway caches an answer per `Authorization` header: at most the
   * clock skew and the shortest access-token lifetime; at most 5 s in strict mode;
   * 0 while a client may use DPoP (a cached answer would serve a request whose
   * proof was never checked). API Gateway keeps an answer for this fixed time (an
   * HTTP API authorizer cannot set one per answer), so the authorizer allows a
   * token only until `exp` plus the skew minus this (`AUTHORIZER_CACHE_SECONDS`):
   * a cached Allow never outlives `exp` plus the skew.
   * @default the clock skew (30 s) capped at the shortest access-token lifetime; 0 in strict mode or with DPoP
   */
  readonly resultsCacheTtl?: Duration
  /**
   * The scheme and host clients call when a proxy stands before API Gateway (the edge's
   * `https://<distribution>`): a DPoP proof's `htu` names it (`REQUEST_ORIGIN`).
   * @default the host API Gateway received the request at
   */
  readonly requestOrigin?: string
  /** @default DEFAULTS.logRetention (3 months) */
  readonly logRetention?: logs.RetentionDays
  /** Of the log group. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy
}

/** Strict mode may cache an answer this long at most: logout must end access within seconds. */
const STRICT_CACHE_LIMIT = Duration.seconds(5)

/**
 * The Lambda authorizer (docs/design.md "Authorizer") as a construct that any
 * stack can put in front of its own HTTP API routes: payload format 2.0,
 * simple responses, identity source `$request.header.Authorization`. It fetches
 * the keys from the issuer's JWKS, so its role holds no KMS permission at all;
 * in strict mode it may batch-get the session and the user from the table.
 *
 * ```ts
 * const auth = new TokenAuthorizer(this, 'Auth', { issuer, clients })
 * api.addRoutes({ path: '/orders', methods: [HttpMethod.GET], integration, authorizer: auth.authorizer })
 * ```
 */
export class TokenAuthorizer extends Construct {
  public readonly handler: TokenFunction
  /** Attach to the routes of one HTTP API; for another API use `authorizerFor()`. */
  public readonly authorizer: HttpLambdaAuthorizer
  public readonly resultsCacheTtl: Duration
  public readonly strict: boolean

  constructor(scope: Construct, id: string, props: TokenAuthorizerProps) {
    super(scope, id)
    const resolved = resolveAuthorizerProps(props)
    this.strict = resolved.strict
    this.resultsCacheTtl = resolved.resultsCacheTtl
    assertHttps('issuer', props.issuer)
    if (props.jwksUri !== undefined) assertHttps('jwksUri', props.jwksUri)
    if (this.strict && !props.table) {
      throw new Error('TokenAuthorizer: strict mode reads the sessions: give it the table')
    }
    // Strict mode is its own bundle, the only one with a DynamoDB client.
    const name = this.strict ? 'authorizerStrict' : 'authorizer'
    this.handler = new TokenFunction(this, 'Authorizer', {
      name,
      environment: functionEnvironment(name, {
        ISSUER: props.issuer,
        ...(props.jwksUri !== undefined && { JWKS_URI: props.jwksUri }),
        ...(props.table && { TABLE_NAME: props.table.tableName }),
        ...(props.requestOrigin !== undefined && { REQUEST_ORIGIN: props.requestOrigin }),
        AWS_CALL_TIMEOUT_MS: String(DEFAULTS.awsCallTimeout.toMilliseconds()),
        JWKS_FETCH_TIMEOUT_MS: String(SETTINGS.JWKS_FETCH_TIMEOUT_MS.default),
        AWS_MAX_ATTEMPTS: String(DEFAULTS.awsMaxAttempts),
        ...resolved.environment,
      }),
      ...(props.logRetention !== undefined && { logRetention: props.logRetention }),
      ...(props.removalPolicy !== undefined && { removalPolicy: props.removalPolicy }),
    })
    // Its row in functions/routes.ts: strict mode reads the session and its user; no keys.
    const row = LAMBDA_FUNCTIONS[name]
    if (row.kms.length > 0) throw new Error(`TokenAuthorizer: the ${name} row lists KMS uses`)
    if (props.table) grantStore(this.handler, props.table, row.store)

    this.authorizer = this.authorizerFor('TokenAuthorizer')
  }

  /** A new API Gateway authorizer on this function, for one more HTTP API. */
  authorizerFor(id: string): HttpLambdaAuthorizer {
    return new HttpLambdaAuthorizer(id, this.handler.function, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource: ['$request.header.Authorization'],
      resultsCacheTtl: this.resultsCacheTtl,
    })
  }
}

/** What the authorizer's props check against: all but the resources and where they live. */
export type AuthorizerChecks = Omit<
  TokenAuthorizerProps,
  'issuer' | 'jwksUri' | 'table' | 'logRetention' | 'removalPolicy'
>

/** The authorizer's props with its defaults applied: what its function and API Gateway get. */
export interface ResolvedAuthorizer {
  readonly strict: boolean
  readonly resultsCacheTtl: Duration
  /** The `AUTHORIZER_*` variables, `AUTHORIZER_CACHE_SECONDS` included. */
  readonly environment: Readonly<Record<string, string>>
}

/**
 * Every check and default of the authorizer's settings, before any resource is built
 * (TokenService runs it among its own checks): throws naming the setting.
 */
export function resolveAuthorizerProps(props: AuthorizerChecks): ResolvedAuthorizer {
  const strict = props.strict ?? DEFAULTS.strictRevocation
  const cached = resultsCacheTtl(props, strict)
  const dpop = dpopClients(props.clients)
  const ttl = dpop.length > 0 ? uncachedForDpop(dpop, props.resultsCacheTtl) : cached
  return {
    strict,
    resultsCacheTtl: ttl,
    environment: {
      ...authorizerEnvironment(props, strict),
      AUTHORIZER_CACHE_SECONDS: String(ttl.toSeconds()),
    },
  }
}

/**
 * The issuer and the JWKS must be https: over plain http anyone on the path could
 * serve the authorizer keys of their own (the functions refuse it at init too).
 */
function assertHttps(prop: 'issuer' | 'jwksUri', value: string): void {
  if (Token.isUnresolved(value)) return
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  if (url?.protocol !== 'https:') {
    throw new Error(`TokenAuthorizer: ${prop} must be an https URL, got "${value}"`)
  }
}

/** The `AUTHORIZER_*` variables, checked against functions/settings.ts's bounds. */
function authorizerEnvironment(
  props: AuthorizerSettings & {
    readonly clients: readonly ClientConfig[]
    readonly tokenBackdateSeconds?: number
  },
  strict: boolean,
): Record<string, string> {
  const defaults = DEFAULTS.authorizerSettings
  if (props.sessionCacheSeconds !== undefined && !strict) {
    throw new Error(
      'TokenAuthorizer: sessionCacheSeconds applies to strict mode only (strict / strictRevocation)',
    )
  }
  const backdate = props.tokenBackdateSeconds ?? DEFAULTS.tokenBackdateSeconds
  rangedSetting('TokenAuthorizer: tokenBackdateSeconds', 'TOKEN_BACKDATE_SECONDS', backdate)
  const audiences = props.audiences
    ? checkedAudiences(props.audiences, props.clients)
    : [...new Set(props.clients.map((client) => client.audience))]
  return {
    AUTHORIZER_SKEW_SECONDS: rangedSetting(
      'TokenAuthorizer: clockSkewSeconds',
      'AUTHORIZER_SKEW_SECONDS',
      props.clockSkewSeconds ?? defaults.clockSkewSeconds,
    ),
    AUTHORIZER_SESSION_CACHE_SECONDS: rangedSetting(
      'TokenAuthorizer: sessionCacheSeconds',
      'AUTHORIZER_SESSION_CACHE_SECONDS',
      props.sessionCacheSeconds ?? defaults.sessionCacheSeconds,
    ),
    AUTHORIZER_MAX_TOKEN_BYTES: rangedSetting(
      'TokenAuthorizer: maxTokenBytes',
      'AUTHORIZER_MAX_TOKEN_BYTES',
      props.maxTokenBytes ?? defaults.maxTokenBytes,
    ),
    AUTHORIZER_AUDIENCES: audiences.join(','),
    // The longest token the service issues: its iat is backdated, its exp is not.
    AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: String(
      longestAccessTokenTtl(props.clients).toSeconds() + backdate,
    ),
  }
}

/** Distinct audiences, each one a client's: a token for any other is never issued. */
export function checkedAudiences(
  audiences: readonly string[],
  clients: readonly ClientConfig[],
): string[] {
  const known = new Set(clients.map((client) => client.audience))
  if (audiences.length === 0) throw new Error('TokenAuthorizer: audiences must not be empty')
  for (const audience of audiences) {
    if (audience.includes(',') || audience.trim() !== audience) {
      throw new Error(
        `TokenAuthorizer: audience "${audience}" cannot be listed in AUTHORIZER_AUDIENCES (comma or outer spaces)`,
      )
    }
    if (!known.has(audience)) {
      throw new Error(
        `TokenAuthorizer: audience "${audience}" is no client's audience (${[...known].join(', ')})`,
      )
    }
  }
  return [...new Set(audiences)]
}

/** The clients that may bind tokens to a DPoP key (`dpop` other than `disabled`). */
export const dpopClients = (clients: readonly ClientConfig[]): string[] =>
  clients
    .filter((client) => (client.dpop ?? CLIENT_DEFAULTS.dpop) !== 'disabled')
    .map((client) => client.client_id)

/**
 * API Gateway keys its cache on the `Authorization` header alone (the `DPoP`
 * header cannot join the identity source: API Gateway would then refuse every
 * request without one, bearer requests included). A cached Allow would let a
 * bound token through with any proof, a replayed one or none: while a client
 * may use DPoP, no answer is cached.
 */
function uncachedForDpop(clients: readonly string[], requested: Duration | undefined): Duration {
  if (requested !== undefined && requested.toSeconds() > 0) {
    throw new Error(
      `TokenAuthorizer: resultsCacheTtl must be 0 while clients use DPoP (${clients.join(', ')}): API Gateway would serve a cached answer to a request whose DPoP proof was never checked. Set their dpop to "disabled" to cache answers.`,
    )
  }
  return Duration.seconds(0)
}

/** The shortest access-token lifetime among the clients. */
export function shortestAccessTokenTtl(clients: readonly ClientConfig[]): Duration {
  const seconds = clients.map(
    (client) => client.access_token_ttl_seconds ?? CLIENT_DEFAULTS.access_token_ttl_seconds,
  )
  return Duration.seconds(Math.min(...seconds))
}

/** The longest access-token lifetime among the clients. */
export function longestAccessTokenTtl(clients: readonly ClientConfig[]): Duration {
  const seconds = clients.map(
    (client) => client.access_token_ttl_seconds ?? CLIENT_DEFAULTS.access_token_ttl_seconds,
  )
  return Duration.seconds(Math.max(...seconds))
}

/**
 * API Gateway's cache of the answers. An Allow cached at the last moment lives
 * on for the whole TTL, so the TTL is at most the skew: the authorizer gives up
 * `AUTHORIZER_CACHE_SECONDS` of its skew on `exp`, and an Allow, cached or
 * not, ends by `exp` plus the skew (docs/security.md "API Gateway's answer cache").
 */
function resultsCacheTtl(props: AuthorizerChecks, strict: boolean): Duration {
  const requested = props.resultsCacheTtl
  const cap = shortestAccessTokenTtl(props.clients)
  const skew = Duration.seconds(
    Number(
      rangedSetting(
        'TokenAuthorizer: clockSkewSeconds',
        'AUTHORIZER_SKEW_SECONDS',
        props.clockSkewSeconds ?? DEFAULTS.authorizerSettings.clockSkewSeconds,
      ),
    ),
  )
  if (requested === undefined) {
    if (strict) return DEFAULTS.strictAuthorizerCacheTtl
    return skew.toSeconds() <= cap.toSeconds() ? skew : cap
  }
  const rule = SETTING_RULES.answerCache
  if (!rule.holds({ cacheSeconds: requested.toSeconds(), skewSeconds: skew.toSeconds() })) {
    throw new Error(
      `TokenAuthorizer: resultsCacheTtl ${requested.toSeconds()} s exceeds the clock skew (${skew.toSeconds()} s): ${rule.why}`,
    )
  }
  if (requested.toSeconds() > cap.toSeconds()) {
    throw new Error(
      `TokenAuthorizer: resultsCacheTtl ${requested.toSeconds()} s exceeds the shortest access-token lifetime (${cap.toSeconds()} s): an answer must not be cached longer than a token lives`,
    )
  }
  if (strict && requested.toSeconds() > STRICT_CACHE_LIMIT.toSeconds()) {
    throw new Error(
      `TokenAuthorizer: strict mode must not cache answers for more than ${STRICT_CACHE_LIMIT.toSeconds()} s (got ${requested.toSeconds()} s): logout would not end access within seconds`,
    )
  }
  return requested
}
