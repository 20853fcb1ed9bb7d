import { Aws, type Duration, Fn, RemovalPolicy, Token } from 'aws-cdk-lib'
import type * as acm from 'aws-cdk-lib/aws-certificatemanager'
import type * as kms from 'aws-cdk-lib/aws-kms'
import type * as logs from 'aws-cdk-lib/aws-logs'
import type * as route53 from 'aws-cdk-lib/aws-route53'
import type * as sns from 'aws-cdk-lib/aws-sns'
import { type ClientConfig, parseClients } from '../functions/core/clients.js'
import { issuerProblem, SETTING_RULES, SETTINGS, type SettingName } from '../functions/settings.js'
import type { TokenServiceConfig } from './config-schema.js'
import { ALARM_THRESHOLDS, type AlarmThresholds, DEFAULTS } from './defaults.js'
import { modeOf } from './envelope-signing.js'
import {
  activeKeyOf,
  assertSigningKeys,
  type SigningAlgorithm,
  type SigningKeySpec,
  type SigningMode,
} from './signing-keys.js'
import {
  type AuthorizerChecks,
  type AuthorizerSettings,
  checkedAudiences,
  resolveAuthorizerProps,
} from './token-authorizer.js'
import { rangedSetting } from './token-function.js'

/**
 * The props of `TokenService`, and `resolveProps`: every check and default of
 * them, in one pure function that runs before any resource is built (the
 * `Check*Props` of aws-solutions-constructs). The builders read only its result.
 */

/** Requests per second (steady) and burst, as API Gateway counts them. */
export interface ThrottleProps {
  readonly rateLimit: number
  readonly burstLimit: number
}

/** A custom domain for the API; the issuer becomes `https://<domainName>`. */
export interface CustomDomainProps {
  /** For example `auth.example.com`. */
  readonly domainName: string
  /** An ACM certificate for `domainName`, in the stack's region. */
  readonly certificate: acm.ICertificate
  /** Creates A and AAAA alias records in this zone. @default no DNS records */
  readonly hostedZone?: route53.IHostedZone
}

/** The config file's types, which the props share: each key's type is stated once, there. */
type Config = TokenServiceConfig

/**
 * The login back-off per username (docs/design.md "Login protection"): the `LOGIN_*` of the
 * login and password functions. Keys, bounds and defaults: the config file's `loginBackoff`
 * (lib/config-schema.ts, docs/configuration.md).
 */
export type LoginBackoffProps = NonNullable<Config['loginBackoff']>

/** Which authorizer protects `/sessions` and `/me`. */
export type AuthorizerKind = NonNullable<Config['authorizer']>

/**
 * Where the security events go (docs/design.md "Security events"): `bus` on, a custom
 * EventBridge bus fed from the table's stream by the forwarder, with a dead-letter queue
 * and its alarms; off, no stream, forwarder or bus (the outbox items are still written,
 * and expire after OUTBOX_RETENTION_DAYS).
 */
export type SecurityEventsProps = NonNullable<Config['securityEvents']>

/**
 * A breached-password range API that `POST /me/password` checks each new password
 * against, besides the offline list (the password function's `PASSWORD_BREACH_CHECK_*`):
 * HIBP-compatible, `GET <url>/range/<first 5 hex of the SHA-1>`, https.
 */
export type PasswordBreachCheckProps = NonNullable<Config['passwordBreachCheck']>

/**
 * This region's part of a service deployed in several regions, active-active
 * (docs/multi-region.md): the config's `regions`.
 */
export interface ServiceRegions {
  /** Every region, the primary first: the primary defines the global table and the multi-Region keys. */
  readonly all: readonly string[]
  /**
   * The primary region's signing keys (`kms` mode), by id, which this region replicates;
   * absent in the primary's own stack.
   */
  readonly primaryKeys?: Readonly<Record<string, kms.IKey>>
  /**
   * The primary region's multi-Region key that wraps the envelope keys' private keys, which
   * this region replicates; absent in the primary's own stack, and without such a key.
   */
  readonly primaryEnvelopeKey?: kms.IKey
  /**
   * The signing keys that are multi-Region: those added while `regions` was set (the key
   * ledger, lib/signing-keys.ts). A KMS key cannot become multi-Region in place.
   */
  readonly multiRegionKeys: readonly string[]
  /**
   * What a refresh gets when its home region cannot be reached (the functions' `FAILOVER`).
   * @default 'relogin'
   */
  readonly failover?: 'relogin' | 'adopt'
}

export interface TokenServiceProps {
  /**
   * The OAuth clients (docs/design.md "Clients"). They reach the functions as the
   * `CLIENTS` environment variable; their `allowed_origins` make up the CORS
   * allow-list and their `audience` values what the authorizer accepts.
   */
  readonly clients: Config['clients']
  /**
   * The `iss` claim and the base URL of the discovery documents: https, no
   * trailing slash.
   * @default `https://<domain.domainName>` with a custom domain, else the HTTP API's endpoint
   */
  readonly issuer?: Config['issuer']
  /**
   * The KMS signing keys: exactly one `active`, any number `retiring`
   * (published in JWKS, never signing). Each key's construct id, logical id and
   * alias derive from its `id`, so a key is never replaced by a change to the list.
   * @default [{ id: 'k1', state: 'active' }]
   */
  readonly signingKeys?: Config['signingKeys']
  /**
   * Listed keys besides the active one that `login` and `token` may also `kms:Sign` with
   * and `kms:GetPublicKey`, so that a key change deployed half-way fails no request:
   * the key about to become active, and the one that was active until the last switch.
   * The CDK app passes `transitionSigningKeys` of its key ledger (lib/signing-keys.ts;
   * docs/operations.md "Key rotation").
   * @default none beyond the active key
   */
  readonly transitionSigningKeys?: readonly string[]
  /**
   * How keys sign (docs/design.md "Keys"): `kms`, a KMS `Sign` per token with a KMS
   * asymmetric key per `signingKeys` entry; `envelope`, in memory with a key pair KMS
   * generated and wrapped under a symmetric key of the stack, unwrapped once per
   * container. A key keeps the mode it was added with: `signingKeyModes`.
   * @default 'kms'
   */
  readonly signing?: Config['signing']
  /**
   * How each listed key signs, when it differs from `signing`: the CDK app passes the
   * key ledger's (a key's mode is fixed when it is added; switching is a rotation).
   * @default every key signs as `signing` says
   */
  readonly signingKeyModes?: Readonly<Record<string, SigningMode>>
  /**
   * `RS256` (KMS `RSA_2048`) or `ES256` (KMS `ECC_NIST_P256`). The native JWT
   * authorizer accepts only RS256.
   * @default 'RS256'
   */
  readonly algorithm?: Config['algorithm']
  /**
   * `lambda`: our Lambda authorizer (docs/design.md "Authorizer"). `jwt`: API
   * Gateway's native JWT authorizer, configured from our discovery document
   * (RS256 only; it caches keys up to 2 hours).
   * @default 'lambda'
   */
  readonly authorizer?: AuthorizerKind
  /**
   * The Lambda authorizer also checks that the session is still active, so that
   * logout ends access within seconds instead of at token expiry. Not
   * available with the `jwt` authorizer.
   * @default false
   */
  readonly strictRevocation?: Config['strictRevocation']
  /**
   * How long API Gateway caches the Lambda authorizer's answer per token
   * (`AUTHORIZER_CACHE_SECONDS`): at most the authorizer's clock skew, so that a cached
   * Allow never outlives the token's `exp` plus the skew (TokenAuthorizer `resultsCacheTtl`).
   * @default the clock skew (30 s) capped at the shortest access-token lifetime; 0 with strictRevocation
   */
  readonly authorizerCacheTtl?: Duration
  /** Stage-wide throttling. @default DEFAULTS.throttle: { rateLimit: 3000, burstLimit: 5000 } */
  readonly throttle?: ThrottleProps
  /** Throttling of `POST /token`. @default DEFAULTS.tokenThrottle: { rateLimit: 2500, burstLimit: 5000 } */
  readonly tokenThrottle?: ThrottleProps
  /**
   * Throttling of `POST /login` (scrypt costs a vCPU per call): a capacity guard; one client is
   * held back by the edge's per-IP rule and the per-username back-off.
   * @default DEFAULTS.loginThrottle: { rateLimit: 200, burstLimit: 400 }
   */
  readonly loginThrottle?: ThrottleProps
  /**
   * Throttling of `POST /me/password` (Lambda authorizer only: with the native JWT one the
   * route keeps the stage limit). @default DEFAULTS.passwordThrottle: { rateLimit: 50, burstLimit: 100 }
   */
  readonly passwordThrottle?: ThrottleProps
  /**
   * What happens to the table, the signing keys and the log groups when they
   * leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy
  /**
   * The table's encryption: the AWS-managed key, or a customer-managed key of its own.
   * @default 'aws-managed'
   */
  readonly tableEncryption?: Config['tableEncryption']
  /**
   * DynamoDB deletion protection on the table.
   * @default true unless removalPolicy is DESTROY
   */
  readonly deletionProtection?: Config['deletionProtection']
  /** Retention of the function and access logs. @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays
  /**
   * Percent of the invocations that log at debug, the success lines included.
   * @default DEFAULTS.logSamplePercent (1)
   */
  readonly logSamplePercent?: Config['logSamplePercent']
  /** Lambda active tracing, the AWS SDK clients traced. @default true */
  readonly tracing?: Config['tracing']
  /** Every alarm notifies this topic, when it fires and when it is OK again. @default no alarm action */
  readonly alarmTopic?: sns.ITopic
  /**
   * Alarm thresholds: shares per thousand, latency, the failed-login band (docs/operations.md
   * "Alarms"). @default ALARM_THRESHOLDS
   */
  readonly alarms?: Config['alarms']
  /** Serve the API on a custom domain. @default the execute-api endpoint */
  readonly domain?: CustomDomainProps
  /**
   * `Cache-Control: max-age` of JWKS and discovery: `JWKS_MAX_AGE_SECONDS` of the jwks
   * function, whose bounds it must keep. The CDK app's key-rotation checks wait for it too.
   * @default `JWKS_MAX_AGE_SECONDS`'s default (docs/configuration.md)
   */
  readonly jwksMaxAge?: Duration
  /**
   * `iat`/`nbf` of the access tokens are set this early: `TOKEN_BACKDATE_SECONDS` of the
   * login and token functions.
   * @default `TOKEN_BACKDATE_SECONDS`'s default (docs/configuration.md)
   */
  readonly tokenBackdateSeconds?: Config['tokenBackdateSeconds']
  /** The login back-off per username. @default DEFAULTS.loginBackoff, the `LOGIN_*` defaults */
  readonly loginBackoff?: LoginBackoffProps
  /**
   * The Lambda authorizer's skew, session cache (strict mode only) and token size
   * limit; `audiences` also sets the native JWT authorizer's audiences.
   * @default DEFAULTS.authorizerSettings, every client's audience
   */
  readonly authorizerSettings?: AuthorizerSettings
  /** @default DEFAULTS.securityEvents: the bus on */
  readonly securityEvents?: SecurityEventsProps
  /** @default none: new passwords are checked against the offline list only */
  readonly passwordBreachCheck?: PasswordBreachCheckProps
  /**
   * The table's physical name. A change replaces the table.
   * @default generated by CloudFormation; `<stack name>-table` with `regions`
   */
  readonly tableName?: Config['tableName']
  /**
   * A step of moving a deployed table into a global table (docs/operations.md "Moving to
   * several regions"); needs `regions` and `tableName`.
   * @default 'none'
   */
  readonly tableMigration?: Config['tableMigration']
  /** Several regions (docs/multi-region.md). @default one region */
  readonly regions?: ServiceRegions
  /**
   * CloudFront and AWS WAF in front of the HTTP API: the issuer becomes the distribution's
   * address, and the execute-api endpoint refuses requests that did not come through it.
   * Not with `domain` yet.
   * @default no edge
   */
  readonly edge?: Config['edge']
  /**
   * A CloudWatch Synthetics canary of discovery and JWKS at the issuer, with an alarm.
   * @default no canary
   */
  readonly canary?: Config['canary']
  /**
   * The CLOUDFRONT web ACL the edge uses, when it is not built in this stack: a web ACL
   * lives in us-east-1 (TokenServiceStack builds one in a companion stack there).
   * @default with `edge`, a web ACL in this stack, which must then be in us-east-1
   */
  readonly edgeWebAclArn?: string
  /**
   * Reserved concurrency per function (`authorizer` is the Lambda authorizer, strict or not).
   * @default none: every function draws on the account's unreserved pool
   */
  readonly reservedConcurrency?: Config['reservedConcurrency']
  /**
   * The table's warm throughput, read and write units a second.
   * @default DynamoDB's (12,000 reads and 4,000 writes a second for a new on-demand table)
   */
  readonly tableWarmThroughput?: Config['tableWarmThroughput']
}

/** The props with every default applied and every check passed: all the builders read. */
export interface ResolvedProps {
  readonly clients: readonly ClientConfig[]
  readonly algorithm: SigningAlgorithm
  readonly signingKeys: readonly SigningKeySpec[]
  /** The `id` of the key that signs. */
  readonly activeKeyId: string
  /** The keys login and token may sign with: the active key, then the transition keys. */
  readonly signingKeyIds: readonly string[]
  /** How each listed key signs (`signing`, unless `signingKeyModes` fixed it when it was added). */
  readonly signingModes: Readonly<Record<string, SigningMode>>
  /** `<stack name>/<construct id>`: the keys' tag and the envelope keys' encryption context owner. */
  readonly keyOwner: string
  /** Some client has `dpop_nonce`: the stack needs the HMAC key the nonces come from. */
  readonly dpopNonce: boolean
  readonly authorizer: ResolvedRouteAuthorizer
  readonly throttle: ThrottleProps
  /** Each throttled route's own limits, by route key (`POST /login`). */
  readonly routeThrottles: Readonly<Record<string, ThrottleProps>>
  readonly removalPolicy: RemovalPolicy
  readonly deletionProtection: boolean
  readonly tableEncryption: NonNullable<Config['tableEncryption']>
  readonly logRetention: logs.RetentionDays
  /** The tunable settings' variables (`TOKEN_BACKDATE_SECONDS`, `JWKS_MAX_AGE_SECONDS`, `LOGIN_*`). */
  readonly tuning: Readonly<Partial<Record<SettingName, string>>>
  readonly domain?: CustomDomainProps
  /**
   * The issuer when it is known before the API exists: the given one, else
   * `https://<domain>`. Undefined: the HTTP API's endpoint.
   */
  readonly issuer?: Config['issuer']
  /** Create the bus, the table's stream and the forwarder. */
  readonly eventBus: boolean
  readonly alarmTopic?: sns.ITopic
  /** `POWERTOOLS_LOGGER_SAMPLE_RATE`: a fraction. */
  readonly logSampleRate: string
  readonly tracing: boolean
  /** Every alarm threshold, the given ones over ALARM_THRESHOLDS. */
  readonly alarmThresholds: AlarmThresholds
  /** The API's access log group (`accessLogGroupName`). */
  readonly accessLogGroupName: string
  /** The table's physical name; `undefined`: CloudFormation's. */
  readonly tableName?: string
  readonly tableMigration: NonNullable<Config['tableMigration']>
  readonly regions?: ServiceRegions
  /** `Cache-Control: max-age` of JWKS and discovery; the edge caches them no longer. */
  readonly jwksMaxAge: Duration
  /** The edge, with its per-IP rate and the web ACL to use (undefined: build one here). */
  readonly edge?: { readonly ratePerIp: number; readonly webAclArn?: string }
  /** Minutes between the canary's runs; undefined: no canary. */
  readonly canaryEveryMinutes?: number
  /** Reserved concurrency by function name; a function left out reserves none. */
  readonly reservedConcurrency: NonNullable<Config['reservedConcurrency']>
  readonly tableWarmThroughput?: Config['tableWarmThroughput']
}

/** Where the service is: its stack's name and its construct id, which name its logs and keys. */
export interface ServicePlace {
  readonly stackName: string
  readonly id: string
}

/** What protects the bearer routes, with its settings checked. */
export type ResolvedRouteAuthorizer =
  | {
      readonly kind: 'lambda'
      /** TokenAuthorizer's props but the issuer and the table, which the builders add. */
      readonly props: AuthorizerChecks & Pick<ResolvedProps, 'logRetention' | 'removalPolicy'>
    }
  | {
      readonly kind: 'jwt'
      readonly audiences: readonly string[]
      /**
       * Why API Gateway may not read the issuer's discovery when it creates the
       * authorizer (a DNS record or an issuer outside this stack); undefined when it can.
       */
      readonly issuerOutside?: string
    }

/**
 * Checks `props` and applies every default, before any resource is built. Throws
 * naming the prop where the functions would refuse the value at cold start, or
 * API Gateway, KMS or Lambda at deploy time.
 */
export function resolveProps(props: TokenServiceProps, place: ServicePlace): ResolvedProps {
  refuseWith('TokenService', () => parseClients(props.clients))
  const algorithm = props.algorithm ?? DEFAULTS.algorithm
  if (algorithm !== 'RS256' && algorithm !== 'ES256') {
    throw new Error(`TokenService: algorithm must be RS256 or ES256, got ${String(algorithm)}`)
  }
  const authorizerKind = props.authorizer ?? DEFAULTS.authorizer
  const strict = props.strictRevocation ?? DEFAULTS.strictRevocation
  if (authorizerKind === 'jwt' && algorithm === 'ES256') {
    throw new Error(
      'TokenService: the native HTTP API JWT authorizer accepts RS256 tokens only, and API Gateway refuses ES256. Use algorithm RS256, or the Lambda authorizer (authorizer: "lambda").',
    )
  }
  if (authorizerKind === 'jwt' && strict) {
    throw new Error(
      'TokenService: strictRevocation needs the Lambda authorizer: the native JWT authorizer cannot check sessions.',
    )
  }
  const dpopRequired = props.clients.filter((client) => client.dpop === 'required')
  if (authorizerKind === 'jwt' && dpopRequired.length > 0) {
    throw new Error(
      `TokenService: clients ${dpopRequired.map((client) => client.client_id).join(', ')} have dpop "required", but the native JWT authorizer checks no DPoP proof and would take their bound tokens as bearer tokens. Use the Lambda authorizer (authorizer: "lambda").`,
    )
  }
  if (authorizerKind !== 'lambda' && authorizerKind !== 'jwt') {
    throw new Error(`TokenService: authorizer must be "lambda" or "jwt", got ${authorizerKind}`)
  }
  const signingKeys = props.signingKeys ?? DEFAULTS.signingKeys
  refuseWith('TokenService', () => assertSigningKeys(signingKeys))
  for (const id of props.transitionSigningKeys ?? []) {
    if (!signingKeys.some((spec) => spec.id === id)) {
      throw new Error(
        `TokenService: transitionSigningKeys names "${id}", which signingKeys does not list`,
      )
    }
  }
  const activeKeyId = activeKeyOf(signingKeys).id
  const signing = props.signing ?? DEFAULTS.signing
  if (signing !== 'kms' && signing !== 'envelope') {
    throw new Error(`TokenService: signing must be "kms" or "envelope", got ${String(signing)}`)
  }
  const signingModes = Object.fromEntries(
    signingKeys.map((spec) => [spec.id, modeOf(spec.id, signing, props.signingKeyModes)]),
  )
  const throttle = props.throttle ?? DEFAULTS.throttle
  // A route left out takes its default, capped at the stage's: a lower stage limit alone is enough.
  const capped = (limits: ThrottleProps) => ({
    rateLimit: Math.min(limits.rateLimit, throttle.rateLimit),
    burstLimit: Math.min(limits.burstLimit, throttle.burstLimit),
  })
  const perRoute = {
    tokenThrottle: ['POST /token', props.tokenThrottle ?? capped(DEFAULTS.tokenThrottle)],
    loginThrottle: ['POST /login', props.loginThrottle ?? capped(DEFAULTS.loginThrottle)],
    passwordThrottle: [
      'POST /me/password',
      props.passwordThrottle ?? capped(DEFAULTS.passwordThrottle),
    ],
  } as const
  for (const [name, limits] of Object.entries({
    throttle,
    ...Object.fromEntries(Object.entries(perRoute).map(([key, [, value]]) => [key, value])),
  })) {
    if (!(limits.rateLimit > 0 && Number.isInteger(limits.burstLimit) && limits.burstLimit > 0)) {
      throw new Error(`TokenService: ${name} needs a positive rateLimit and an integer burstLimit`)
    }
  }
  for (const [name, [, limits]] of Object.entries(perRoute)) {
    // A route limit above the stage's would never apply: a sign of a typo.
    if (limits.rateLimit > throttle.rateLimit || limits.burstLimit > throttle.burstLimit) {
      throw new Error(`TokenService: ${name} must not exceed throttle`)
    }
  }
  const routeThrottles = Object.fromEntries(Object.values(perRoute))
  const removalPolicy = props.removalPolicy ?? DEFAULTS.removalPolicy
  const logRetention = props.logRetention ?? DEFAULTS.logRetention
  const jwksMaxAge = props.jwksMaxAge ?? DEFAULTS.jwksMaxAge
  // Each function gets only the settings it reads; the values config.ts would refuse fail here.
  const tuning = {
    TOKEN_BACKDATE_SECONDS: rangedSetting(
      'TokenService: tokenBackdateSeconds',
      'TOKEN_BACKDATE_SECONDS',
      props.tokenBackdateSeconds ?? DEFAULTS.tokenBackdateSeconds,
    ),
    JWKS_MAX_AGE_SECONDS: rangedSetting(
      'TokenService: jwksMaxAge',
      'JWKS_MAX_AGE_SECONDS',
      jwksMaxAge.toSeconds(),
    ),
    ...loginBackoffEnvironment(props.loginBackoff),
    ...breachCheckEnvironment(props.passwordBreachCheck),
  }
  const { audiences, ...lambdaOnly } = props.authorizerSettings ?? {}
  const lambdaOnlySet = Object.entries(lambdaOnly).filter(([, value]) => value !== undefined)
  if (authorizerKind === 'jwt' && lambdaOnlySet.length > 0) {
    throw new Error(
      `TokenService: authorizerSettings ${lambdaOnlySet.map(([name]) => name).join(', ')} apply to the Lambda authorizer only`,
    )
  }
  if (props.edge && props.domain) {
    throw new Error(
      'TokenService: edge and domain together are not offered yet: the distribution would need the certificate in us-east-1 and the domain on CloudFront (docs/operations.md "Edge")',
    )
  }
  if (props.edgeWebAclArn !== undefined && !props.edge) {
    throw new Error('TokenService: edgeWebAclArn needs edge')
  }
  const issuer = props.issuer ?? (props.domain && `https://${props.domain.domainName}`)
  if (issuer !== undefined) assertIssuer(issuer)

  let authorizer: ResolvedRouteAuthorizer
  if (authorizerKind === 'lambda') {
    const authorizerProps = {
      ...props.authorizerSettings,
      clients: props.clients,
      ...(props.tokenBackdateSeconds !== undefined && {
        tokenBackdateSeconds: props.tokenBackdateSeconds,
      }),
      strict,
      ...(props.authorizerCacheTtl !== undefined && {
        resultsCacheTtl: props.authorizerCacheTtl,
      }),
      logRetention,
      removalPolicy,
    }
    resolveAuthorizerProps(authorizerProps) // its checks, now rather than after the functions
    authorizer = { kind: 'lambda', props: authorizerProps }
  } else {
    if (props.authorizerCacheTtl !== undefined) {
      throw new Error('TokenService: authorizerCacheTtl applies to the Lambda authorizer only')
    }
    // A DNS record outside the stack, or an issuer served elsewhere, cannot be waited for.
    const issuerOutside =
      props.issuer !== undefined &&
      (props.domain === undefined || props.issuer !== `https://${props.domain.domainName}`)
        ? `the issuer ${props.issuer} is not this API's address`
        : props.domain && !props.domain.hostedZone
          ? `the DNS record of ${props.domain.domainName} is not in this stack (no hostedZone)`
          : undefined
    authorizer = {
      kind: 'jwt',
      audiences: audiences
        ? checkedAudiences(audiences, props.clients)
        : [...new Set(props.clients.map((client) => client.audience))],
      ...(issuerOutside && { issuerOutside }),
    }
  }

  return {
    clients: props.clients,
    algorithm,
    signingKeys,
    activeKeyId,
    signingKeyIds: [...new Set([activeKeyId, ...(props.transitionSigningKeys ?? [])])],
    signingModes,
    keyOwner: `${place.stackName}/${place.id}`,
    dpopNonce: props.clients.some((client) => client.dpop_nonce),
    authorizer,
    throttle,
    routeThrottles,
    removalPolicy,
    deletionProtection: props.deletionProtection ?? removalPolicy !== RemovalPolicy.DESTROY,
    tableEncryption: props.tableEncryption ?? 'aws-managed',
    logRetention,
    tuning,
    ...(props.domain && { domain: props.domain }),
    ...(issuer !== undefined && { issuer }),
    eventBus: props.securityEvents?.bus ?? DEFAULTS.securityEvents.bus,
    ...(props.alarmTopic && { alarmTopic: props.alarmTopic }),
    logSampleRate: String((props.logSamplePercent ?? DEFAULTS.logSamplePercent) / 100),
    tracing: props.tracing ?? DEFAULTS.tracing,
    alarmThresholds: { ...ALARM_THRESHOLDS, ...definedOnly(props.alarms ?? {}) },
    accessLogGroupName: accessLogGroupName(place.stackName, place.id),
    jwksMaxAge,
    ...(props.canary && { canaryEveryMinutes: props.canary.everyMinutes ?? 5 }),
    reservedConcurrency: props.reservedConcurrency ?? {},
    ...(props.edge && {
      edge: {
        ratePerIp: props.edge.waf.ratePerIp ?? DEFAULTS.edgeRatePerIp,
        ...(props.edgeWebAclArn !== undefined && { webAclArn: props.edgeWebAclArn }),
      },
    }),
    ...(props.tableWarmThroughput && { tableWarmThroughput: props.tableWarmThroughput }),
    ...resolveRegions(props, place, signingModes),
  }
}

/** The table's name and the regions, checked: a mistake names the config key. */
function resolveRegions(
  props: TokenServiceProps,
  place: ServicePlace,
  signingModes: Readonly<Record<string, SigningMode>>,
): Pick<ResolvedProps, 'tableName' | 'tableMigration' | 'regions'> {
  const tableMigration = props.tableMigration ?? 'none'
  const { regions } = props
  if (!regions) {
    if (tableMigration !== 'none') {
      throw new Error(`TokenService: tableMigration "${tableMigration}" needs regions`)
    }
    return { tableMigration, ...(props.tableName !== undefined && { tableName: props.tableName }) }
  }
  // Each region's API has its own endpoint: without one hostname, each would sign its own iss.
  if (props.issuer === undefined && props.domain === undefined) {
    throw new Error(
      'TokenService: regions needs issuer (or domain): every region must sign the same iss behind one hostname (docs/operations.md "One issuer behind one hostname")',
    )
  }
  if (regions.all.length < 2 || new Set(regions.all).size !== regions.all.length) {
    throw new Error(
      `TokenService: regions must list at least 2 distinct regions, got ${regions.all.join(', ')}`,
    )
  }
  if (tableMigration !== 'none' && props.tableName === undefined) {
    throw new Error(`TokenService: tableMigration "${tableMigration}" needs tableName`)
  }
  if (tableMigration !== 'none' && regions.primaryKeys) {
    throw new Error(
      'TokenService: tableMigration is a step of the primary region alone: deploy the other regions after it',
    )
  }
  const single = Object.keys(signingModes).filter((id) => !regions.multiRegionKeys.includes(id))
  if (regions.primaryKeys && single.length > 0) {
    throw new Error(
      `TokenService: regions: keys ${single.join(', ')} are single-Region (added before regions was set): a region other than the primary can neither sign with nor publish them. Rotate to keys added with regions first (docs/operations.md "Moving to several regions").`,
    )
  }
  return {
    tableMigration,
    tableName: props.tableName ?? `${place.stackName}-table`,
    regions,
  }
}

/**
 * The access log group's name: `/aws/vendedlogs/<stack>/<stack uuid>/<id>/access-logs`. Under
 * `/aws/vendedlogs/`, log delivery needs no entry of its own in the account's CloudWatch Logs
 * resource policy, which is capped at 5,120 characters for all of them. The stack's UUID (from
 * its stack id) keeps the name unique, even beside a retained group of a deleted stack of the
 * same name.
 */
export function accessLogGroupName(stackName: string, id: string): string {
  const stackUuid = Fn.select(2, Fn.split('/', Aws.STACK_ID))
  const name = `/aws/vendedlogs/${stackName}/${stackUuid}/${id}/access-logs`
  // A stack id's UUID is 36 characters of hex digits and `-`.
  const longest = `/aws/vendedlogs/${stackName}/${'-'.repeat(36)}/${id}/access-logs`
  if (!Token.isUnresolved(stackName) && !/^[.\-_/#A-Za-z0-9]{1,512}$/.test(longest)) {
    throw new Error(
      `TokenService: the access log group name /aws/vendedlogs/${stackName}/<stack uuid>/${id}/access-logs is not a CloudWatch Logs name (at most 512 letters, digits and . - _ / #): shorten the stack name or the construct id`,
    )
  }
  return name
}

/** The keys whose value is given. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, field]) => field !== undefined),
  ) as Partial<T>
}

/** Runs `check`, prefixing the error it throws with `who`. */
function refuseWith(who: string, check: () => unknown): void {
  try {
    check()
  } catch (error) {
    throw new Error(`${who}: ${(error as Error).message}`)
  }
}

/** The password function's `PASSWORD_BREACH_CHECK_*`: https only, as functions/config.ts checks. */
function breachCheckEnvironment(check?: PasswordBreachCheckProps): Record<string, string> {
  if (!check) return {}
  const https = () => {
    try {
      return new URL(check.url).protocol === 'https:'
    } catch {
      return false
    }
  }
  if (!Token.isUnresolved(check.url) && !https()) {
    throw new Error(
      `TokenService: passwordBreachCheck.url must be an https URL, got "${check.url}"`,
    )
  }
  return {
    PASSWORD_BREACH_CHECK_URL: check.url,
    PASSWORD_BREACH_CHECK_TIMEOUT_MS: rangedSetting(
      'TokenService: passwordBreachCheck.timeoutMs',
      'PASSWORD_BREACH_CHECK_TIMEOUT_MS',
      check.timeoutMs ?? SETTINGS.PASSWORD_BREACH_CHECK_TIMEOUT_MS.default,
    ),
  }
}

/** The login function's `LOGIN_*` variables, checked as functions/config.ts checks them. */
function loginBackoffEnvironment(backoff: LoginBackoffProps = {}): Record<string, string> {
  const value = {
    freeFailures: backoff.freeFailures ?? DEFAULTS.loginBackoff.freeFailures,
    baseSeconds: backoff.baseSeconds ?? DEFAULTS.loginBackoff.baseSeconds,
    maxSeconds: backoff.maxSeconds ?? DEFAULTS.loginBackoff.maxSeconds,
    failureWindowSeconds:
      backoff.failureWindowSeconds ?? DEFAULTS.loginBackoff.failureWindowSeconds,
  }
  const prop = (name: keyof LoginBackoffProps) => `TokenService: loginBackoff.${name}`
  const environment = {
    LOGIN_FREE_FAILURES: rangedSetting(
      prop('freeFailures'),
      'LOGIN_FREE_FAILURES',
      value.freeFailures,
    ),
    LOGIN_BACKOFF_BASE_SECONDS: rangedSetting(
      prop('baseSeconds'),
      'LOGIN_BACKOFF_BASE_SECONDS',
      value.baseSeconds,
    ),
    LOGIN_BACKOFF_MAX_SECONDS: rangedSetting(
      prop('maxSeconds'),
      'LOGIN_BACKOFF_MAX_SECONDS',
      value.maxSeconds,
    ),
    LOGIN_FAILURE_WINDOW_SECONDS: rangedSetting(
      prop('failureWindowSeconds'),
      'LOGIN_FAILURE_WINDOW_SECONDS',
      value.failureWindowSeconds,
    ),
  }
  const rule = SETTING_RULES.failureWindow
  if (!rule.holds({ windowSeconds: value.failureWindowSeconds, maxSeconds: value.maxSeconds })) {
    throw new Error(
      `${prop('failureWindowSeconds')} (${value.failureWindowSeconds}) must be at least loginBackoff.maxSeconds (${value.maxSeconds}): ${rule.why}`,
    )
  }
  return environment
}

/** The issuer rule of functions/settings.ts, with https: verifiers (and API Gateway) fetch from it. */
function assertIssuer(issuer: string): void {
  if (Token.isUnresolved(issuer)) return
  const problem = issuerProblem(issuer, { https: true })
  if (problem) throw new Error(`TokenService: issuer must be ${problem}, got "${issuer}"`)
}
