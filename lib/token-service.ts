import {
  Annotations,
  Aws,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  Tags,
  Token,
  Validations,
} from 'aws-cdk-lib'
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway'
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import type * as acm from 'aws-cdk-lib/aws-certificatemanager'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as kms from 'aws-cdk-lib/aws-kms'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as route53 from 'aws-cdk-lib/aws-route53'
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets'
import type * as sns from 'aws-cdk-lib/aws-sns'
import { Construct } from 'constructs'
import { itemKey, TABLE_SCHEMA } from '../functions/adapters/dynamodb/table.js'
import { KMS_SIGNING_ALGORITHMS } from '../functions/adapters/kms-signer.js'
import { type ClientConfig, parseClients } from '../functions/core/clients.js'
import { CORS, type HttpFunction, ROUTES } from '../functions/routes.js'
import { DEFAULTS } from './defaults.js'
import {
  EnvelopeSigning,
  envelopeContextConditions,
  envelopeKeyName,
  keyPairSpec,
  modeOf,
} from './envelope-signing.js'
import { TokenServiceMonitoring } from './monitoring.js'
import { SecurityEvents } from './security-events.js'
import {
  activeKeyOf,
  assertSigningKeys,
  type SigningAlgorithm,
  type SigningKeySpec,
  type SigningMode,
} from './signing-keys.js'
import { grantStore, type StoreMethod } from './table-access.js'
import { type AuthorizerSettings, checkedAudiences, TokenAuthorizer } from './token-authorizer.js'
import { functionEnvironment, rangedSetting, TokenFunction } from './token-function.js'

export type { SigningAlgorithm, SigningKeySpec, SigningMode } from './signing-keys.js'

/**
 * The tag every signing key carries, valued `<stack name>/<construct id>`: the jwks function
 * may read the public key of any key with this service's tag (docs/operations.md "Key rotation").
 */
export const SIGNING_KEY_TAG = 'token-service:signing-key-of'

/** The native JWT authorizer's id: CDK creates it under the HTTP API when a route binds it. */
const JWT_AUTHORIZER_ID = 'JwtAuthorizer'

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

/** The login back-off per username (docs/design.md "Login protection"): the `LOGIN_*` of the login and password functions. */
export interface LoginBackoffProps {
  /** Failed logins in a row before any wait, 0 to 100 (`LOGIN_FREE_FAILURES`). @default 3 */
  readonly freeFailures?: number
  /**
   * The first wait, doubled by each further failure, 1 to 3600 (`LOGIN_BACKOFF_BASE_SECONDS`).
   * @default 1
   */
  readonly baseSeconds?: number
  /** The longest wait, 1 to 86400 (`LOGIN_BACKOFF_MAX_SECONDS`). @default 900 */
  readonly maxSeconds?: number
  /**
   * Failures are forgotten this long after the last one: 60 to 2592000 and at least
   * `maxSeconds` (`LOGIN_FAILURE_WINDOW_SECONDS`).
   * @default 86400
   */
  readonly failureWindowSeconds?: number
}

/** Which authorizer protects `/sessions` and `/me`. */
export type AuthorizerKind = 'lambda' | 'jwt'

/** Where the security events go (docs/design.md "Security events"). */
export interface SecurityEventsProps {
  /**
   * A custom EventBridge bus, fed from the table's stream by the forwarder, with
   * a dead-letter queue and its alarms. Off: no stream, forwarder or bus; the
   * outbox items are still written, and expire after OUTBOX_RETENTION_DAYS.
   * @default true
   */
  readonly bus?: boolean
}

export interface TokenServiceProps {
  /**
   * The OAuth clients (docs/design.md "Clients"). They reach the functions as the
   * `CLIENTS` environment variable; their `allowed_origins` make up the CORS
   * allow-list and their `audience` values what the authorizer accepts.
   */
  readonly clients: readonly ClientConfig[]
  /**
   * The `iss` claim and the base URL of the discovery documents: https, no
   * trailing slash.
   * @default `https://<domain.domainName>` with a custom domain, else the HTTP API's endpoint
   */
  readonly issuer?: string
  /**
   * The KMS signing keys: exactly one `active`, any number `retiring`
   * (published in JWKS, never signing). Each key's construct id, logical id and
   * alias derive from its `id`, so a key is never replaced by a change to the list.
   * @default [{ id: 'k1', state: 'active' }]
   */
  readonly signingKeys?: readonly SigningKeySpec[]
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
  readonly signing?: SigningMode
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
  readonly algorithm?: SigningAlgorithm
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
  readonly strictRevocation?: boolean
  /**
   * How long API Gateway caches the Lambda authorizer's answer per token: at most
   * the authorizer's clock skew, so that a cached Allow never outlives the token's
   * `exp` plus the skew (TokenAuthorizer `resultsCacheTtl`).
   * @default the clock skew (30 s) capped at the shortest access-token lifetime; 0 with strictRevocation
   */
  readonly authorizerCacheTtl?: Duration
  /** Stage-wide throttling. @default { rateLimit: 500, burstLimit: 1000 } */
  readonly throttle?: ThrottleProps
  /**
   * Throttling of `POST /login` and, apart, of `POST /me/password` (scrypt costs a vCPU per
   * call). @default { rateLimit: 20, burstLimit: 40 }
   */
  readonly loginThrottle?: ThrottleProps
  /**
   * What happens to the table, the signing keys and the log groups when they
   * leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy
  /**
   * DynamoDB deletion protection on the table.
   * @default true unless removalPolicy is DESTROY
   */
  readonly deletionProtection?: boolean
  /** Retention of the function and access logs. @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays
  /** Every alarm notifies this topic. @default no alarm action */
  readonly alarmTopic?: sns.ITopic
  /** Serve the API on a custom domain. @default the execute-api endpoint */
  readonly domain?: CustomDomainProps
  /**
   * `Cache-Control: max-age` of JWKS and discovery, 0 to 86400 s (`JWKS_MAX_AGE_SECONDS` of
   * the jwks function). The CDK app's key-rotation checks wait for it too.
   * @default 5 minutes
   */
  readonly jwksMaxAge?: Duration
  /**
   * `iat`/`nbf` of the access tokens are set this early, 0 to 60 (`TOKEN_BACKDATE_SECONDS`
   * of the login and token functions).
   * @default 5
   */
  readonly tokenBackdateSeconds?: number
  /** The login back-off per username. @default DEFAULTS.loginBackoff (3 free, 1 s to 900 s, 1 day) */
  readonly loginBackoff?: LoginBackoffProps
  /**
   * The Lambda authorizer's skew, session cache (strict mode only) and token size
   * limit; `audiences` also sets the native JWT authorizer's audiences.
   * @default DEFAULTS.authorizerSettings (30 s, 5 s, 4096 bytes), every client's audience
   */
  readonly authorizerSettings?: AuthorizerSettings
  /** @default DEFAULTS.securityEvents: the bus on */
  readonly securityEvents?: SecurityEventsProps
}

/** The routes that run scrypt (about a vCPU-second a call): each has `loginThrottle` of its own. */
const PASSWORD_ROUTES: readonly string[] = ['POST /login', 'POST /me/password']

/** The DynamoDB calls each function makes (see lib/table-access.ts for the actions). */
export const STORE_USE: Readonly<Partial<Record<HttpFunction, readonly StoreMethod[]>>> = {
  // One Query finds the user while the attempt takes its turn (counted up front, or a
  // back-off slot claimed); success clears the count and creates the session guarded by
  // the user, with its event. A refusal that changes nothing else writes its event alone:
  // login.throttled, or login.failed (the turn already counted it).
  login: [
    'loadLogin',
    'countLoginAttempt',
    'claimLoginAttempt',
    'clearLoginFailures',
    'createSession',
    'appendEvent',
    // A session whose token could not be sent (signing failed) is revoked at once.
    'revokeSession',
    // A DPoP proof's single use.
    'recordProof',
  ],
  // One batched read (and a DPoP proof's single use), then the rotation; a lost race
  // re-reads the session; reuse revokes it, or, for a client in report mode, writes its
  // event alone.
  token: [
    'loadRefreshState',
    // Only for a token that is neither the session's current nor its previous one.
    'wasRetired',
    'recordProof',
    'getSession',
    'recordRetired',
    'rotate',
    'revokeSession',
    'appendEvent',
    // The grace seals' wrapped keys: this container's written once, another's read.
    'saveGraceKey',
    'findGraceKey',
  ],
  revoke: ['loadRefreshState', 'wasRetired', 'revokeSession'],
  // List (with the user, to drop sessions a logout everywhere voided), end one, end all
  // (void the user's sessions, then revoke each).
  sessions: ['listSessions', 'loadSessionState', 'getSession', 'revokeSession', 'updateUser'],
  // The caller's session and user in one read, the username's failed logins (the login
  // back-off, counted and claimed as at login), the change (one transaction: the user's
  // hash and sessions_valid_after, the kept session, password.changed), then each other
  // session revoked with its event. A refused check writes its event alone.
  password: [
    'loadSessionState',
    'countLoginAttempt',
    'claimLoginAttempt',
    'clearLoginFailures',
    'changePassword',
    'appendEvent',
    'listSessions',
    'revokeSession',
  ],
}

/**
 * The token service (docs/design.md): one DynamoDB table, the KMS signing keys, the
 * login/token/revoke/jwks/sessions/me functions, the authorizer, the HTTP API
 * in front of them, and the alarms and dashboard that watch them.
 */
export class TokenService extends Construct {
  public readonly table: dynamodb.Table
  public readonly algorithm: SigningAlgorithm
  /** Every signing key, by its `id`. */
  /** Every KMS signing key (`kms` mode), by its `id`. */
  public readonly signingKeys: Readonly<Record<string, kms.Key>>
  /** The active key when it is a KMS key; `undefined` when it is an envelope key. */
  public readonly activeKey?: kms.Key
  public readonly activeKeyAlias?: kms.Alias
  /** The KMS keys that are listed but do not sign. */
  public readonly retiringKeys: readonly kms.Key[]
  /** The symmetric key wrapping the envelope keys' private keys, when a key is an envelope key. */
  public readonly envelopeSigning?: EnvelopeSigning
  /**
   * Wraps the data keys that seal grace children (docs/design.md "Grace child"):
   * the server's half of each seal, so that a copy of the table and an old
   * refresh token never open one. Only the token function may use it.
   */
  public readonly graceKey: kms.Key
  public readonly api: apigwv2.HttpApi
  public readonly stage: apigwv2.HttpStage
  public readonly accessLogs: logs.LogGroup
  /** Base URL of the API: the custom domain if any, else the execute-api endpoint. */
  public readonly url: string
  public readonly issuer: string
  public readonly domainName?: apigwv2.DomainName
  /**
   * The HMAC key the DPoP nonces are derived from (docs/design.md "DPoP"); only
   * when some client has `dpop_nonce`.
   */
  public readonly dpopNonceKey?: kms.Key
  /** Every function, by handler name. */
  public readonly functions: Readonly<Record<HttpFunction, TokenFunction>>
  /** Our Lambda authorizer; `undefined` with `authorizer: 'jwt'`. */
  public readonly tokenAuthorizer?: TokenAuthorizer
  /** What protects the bearer routes (the Lambda or the native JWT authorizer). */
  public readonly routeAuthorizer: apigwv2.IHttpRouteAuthorizer
  public readonly monitoring: TokenServiceMonitoring
  /** The bus, the forwarder and its dead-letter queue; `undefined` with `securityEvents.bus` off. */
  public readonly securityEvents?: SecurityEvents

  constructor(scope: Construct, id: string, props: TokenServiceProps) {
    super(scope, id)
    try {
      parseClients(props.clients) // the functions would refuse them at cold start: refuse them now
    } catch (error) {
      throw new Error(`TokenService: ${(error as Error).message}`)
    }
    this.algorithm = props.algorithm ?? DEFAULTS.algorithm
    if (this.algorithm !== 'RS256' && this.algorithm !== 'ES256') {
      throw new Error(
        `TokenService: algorithm must be RS256 or ES256, got ${String(this.algorithm)}`,
      )
    }
    const authorizerKind = props.authorizer ?? DEFAULTS.authorizer
    const strict = props.strictRevocation ?? DEFAULTS.strictRevocation
    if (authorizerKind === 'jwt' && this.algorithm === 'ES256') {
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
    const keySpecs = props.signingKeys ?? DEFAULTS.signingKeys
    try {
      assertSigningKeys(keySpecs)
    } catch (error) {
      throw new Error(`TokenService: ${(error as Error).message}`)
    }
    for (const id of props.transitionSigningKeys ?? []) {
      if (!keySpecs.some((spec) => spec.id === id)) {
        throw new Error(
          `TokenService: transitionSigningKeys names "${id}", which signingKeys does not list`,
        )
      }
    }
    const throttle = props.throttle ?? DEFAULTS.throttle
    const loginThrottle = props.loginThrottle ?? DEFAULTS.loginThrottle
    for (const [name, limits] of Object.entries({ throttle, loginThrottle })) {
      if (!(limits.rateLimit > 0 && Number.isInteger(limits.burstLimit) && limits.burstLimit > 0)) {
        throw new Error(
          `TokenService: ${name} needs a positive rateLimit and an integer burstLimit`,
        )
      }
    }
    if (
      loginThrottle.rateLimit > throttle.rateLimit ||
      loginThrottle.burstLimit > throttle.burstLimit
    ) {
      throw new Error('TokenService: loginThrottle must not exceed throttle')
    }
    const removalPolicy = props.removalPolicy ?? DEFAULTS.removalPolicy
    const logRetention = props.logRetention ?? DEFAULTS.logRetention
    const jwksMaxAge = props.jwksMaxAge ?? DEFAULTS.jwksMaxAge
    // Each function gets only the settings it reads; the values config.ts would refuse fail here.
    const settingValues = {
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
    }
    const { audiences, ...lambdaOnly } = props.authorizerSettings ?? {}
    const lambdaOnlySet = Object.entries(lambdaOnly).filter(([, value]) => value !== undefined)
    if (authorizerKind === 'jwt' && lambdaOnlySet.length > 0) {
      throw new Error(
        `TokenService: authorizerSettings ${lambdaOnlySet.map(([name]) => name).join(', ')} apply to the Lambda authorizer only`,
      )
    }

    // The schema the adapters read and write (functions/adapters/dynamodb/table.ts).
    const { partitionKey, sortKey, ttlAttribute, gsi1 } = TABLE_SCHEMA
    const string = (name: string) => ({ name, type: dynamodb.AttributeType.STRING })
    const eventBus = props.securityEvents?.bus ?? DEFAULTS.securityEvents.bus
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: string(partitionKey),
      sortKey: string(sortKey),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // The outbox items' way to the bus; nothing else reads the stream.
      ...(eventBus && { stream: dynamodb.StreamViewType[TABLE_SCHEMA.streamViewType] }),
      timeToLiveAttribute: ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? removalPolicy !== RemovalPolicy.DESTROY,
      removalPolicy,
    })
    this.table.addGlobalSecondaryIndex({
      indexName: gsi1.indexName,
      partitionKey: string(gsi1.partitionKey),
      sortKey: string(gsi1.sortKey),
      projectionType: dynamodb.ProjectionType.ALL,
    })

    const stackName = Stack.of(this).stackName
    const aliasPrefix = `alias/${stackName}/${this.node.id}`
    const keyTag = `${stackName}/${this.node.id}`
    const signing = props.signing ?? DEFAULTS.signing
    if (signing !== 'kms' && signing !== 'envelope') {
      throw new Error(`TokenService: signing must be "kms" or "envelope", got ${String(signing)}`)
    }
    const mode = (id: string) => modeOf(id, signing, props.signingKeyModes)
    const keys: Record<string, kms.Key> = {}
    for (const spec of keySpecs) {
      if (mode(spec.id) !== 'kms') continue
      const key = new kms.Key(this, `SigningKey-${spec.id}`, {
        description: `Signs the access tokens (${this.algorithm}) of ${this.node.path}: key ${spec.id}`,
        keySpec: this.algorithm === 'RS256' ? kms.KeySpec.RSA_2048 : kms.KeySpec.ECC_NIST_P256,
        keyUsage: kms.KeyUsage.SIGN_VERIFY,
        removalPolicy,
      })
      Tags.of(key).add(SIGNING_KEY_TAG, keyTag)
      new kms.Alias(this, `SigningKeyAlias-${spec.id}`, {
        aliasName: `${aliasPrefix}/${spec.id}`,
        targetKey: key,
      })
      keys[spec.id] = key
    }
    this.signingKeys = keys
    const activeId = activeKeyOf(keySpecs).id
    this.activeKey = keys[activeId]
    this.retiringKeys = keySpecs
      .filter((spec) => spec.id !== activeId && keys[spec.id])
      .map((spec) => keys[spec.id] as kms.Key)
    // Follows the active key, so that operators can reach it by one stable name.
    if (this.activeKey) {
      this.activeKeyAlias = new kms.Alias(this, 'ActiveSigningKeyAlias', {
        aliasName: `${aliasPrefix}/active`,
        targetKey: this.activeKey,
      })
    }
    if (keySpecs.some((spec) => mode(spec.id) === 'envelope')) {
      this.envelopeSigning = new EnvelopeSigning(this, 'EnvelopeSigning', {
        algorithm: this.algorithm,
        owner: keyTag,
        removalPolicy,
        tag: [SIGNING_KEY_TAG, keyTag],
      })
    }
    // How the functions' environment names a key: its KMS key's ARN, or `envelope:<id>`.
    const keyName = (id: string) => keys[id]?.keyArn ?? envelopeKeyName(id)

    this.graceKey = new kms.Key(this, 'GraceKey', {
      description: `Wraps the data keys sealing the grace children of ${this.node.path}`,
      enableKeyRotation: true,
      removalPolicy,
    })
    if (props.clients.some((client) => client.dpop_nonce)) {
      this.dpopNonceKey = new kms.Key(this, 'DpopNonceKey', {
        description: `Derives the DPoP nonce key of ${this.node.path} (GenerateMac, once per container)`,
        keySpec: kms.KeySpec.HMAC_256,
        keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
        // Nothing depends on it for long: a new key costs each client one use_dpop_nonce round trip.
        removalPolicy: RemovalPolicy.DESTROY,
        pendingWindow: Duration.days(7),
      })
    }

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Token service: login, refresh, revoke, sessions, JWKS and discovery',
      createDefaultStage: false,
      // With a custom domain, the issuer is the only address: the execute-api one is closed.
      disableExecuteApiEndpoint: props.domain !== undefined,
      ...corsFor(props.clients),
    })
    this.accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      logGroupName: accessLogGroupName(stackName, this.node.id),
      retention: logRetention,
      removalPolicy,
    })
    this.stage = new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        // Context values only: no header, query string or body, so no token or password.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTimeEpoch',
            method: '$context.httpMethod',
            routeKey: '$context.routeKey',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationStatus: '$context.integrationStatus',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
            error: '$context.error.message',
          }),
        ),
      },
    })

    // What makes the issuer's address answer: the JWT authorizer waits for it.
    const domainResources: Construct[] = []
    if (props.domain) {
      this.domainName = new apigwv2.DomainName(this, 'DomainName', {
        domainName: props.domain.domainName,
        certificate: props.domain.certificate,
        securityPolicy: apigwv2.SecurityPolicy.TLS_1_2,
      })
      const mapping = new apigwv2.ApiMapping(this, 'ApiMapping', {
        api: this.api,
        domainName: this.domainName,
        stage: this.stage,
      })
      domainResources.push(this.domainName, mapping)
      if (props.domain.hostedZone) {
        const target = route53.RecordTarget.fromAlias(
          new route53Targets.ApiGatewayv2DomainProperties(
            this.domainName.regionalDomainName,
            this.domainName.regionalHostedZoneId,
          ),
        )
        const record = {
          zone: props.domain.hostedZone,
          recordName: props.domain.domainName,
          target,
        }
        domainResources.push(
          new route53.ARecord(this, 'DomainRecordA', record),
          new route53.AaaaRecord(this, 'DomainRecordAAAA', record),
        )
      }
    }
    this.url = props.domain ? `https://${props.domain.domainName}` : this.api.apiEndpoint
    this.issuer = props.issuer ?? this.url
    assertIssuer(this.issuer)

    // Each function gets only the settings it reads (functions/settings.ts).
    const values = {
      ...settingValues,
      ISSUER: this.issuer,
      CLIENTS: JSON.stringify(props.clients),
      TABLE_NAME: this.table.tableName,
      SIGNING_KEY_ID: keyName(activeId),
      GRACE_KEY_ID: this.graceKey.keyArn,
      RETIRING_KEY_IDS: keySpecs
        .filter((spec) => spec.id !== activeId)
        .map((spec) => keyName(spec.id))
        .join(','),
      ...(this.envelopeSigning && {
        ENVELOPE_KEY_ID: this.envelopeSigning.key.keyArn,
        SIGNING_KEY_OWNER: keyTag,
      }),
      SIGNING_ALG: this.algorithm,
      ...(this.dpopNonceKey && { DPOP_NONCE_KEY_ID: this.dpopNonceKey.keyArn }),
      AWS_CALL_TIMEOUT_MS: String(DEFAULTS.awsCallTimeout.toMilliseconds()),
      AWS_MAX_ATTEMPTS: String(DEFAULTS.awsMaxAttempts),
    }
    // The jwks function reads the table only for envelope keys' public keys.
    const valuesOf = (name: HttpFunction) =>
      name === 'jwks' && !this.envelopeSigning ? { ...values, TABLE_NAME: undefined } : values
    const make = (name: HttpFunction) =>
      new TokenFunction(this, `${name[0]?.toUpperCase()}${name.slice(1)}`, {
        name,
        environment: functionEnvironment(name, valuesOf(name)),
        logRetention,
        removalPolicy,
      })
    this.functions = {
      login: make('login'),
      token: make('token'),
      revoke: make('revoke'),
      jwks: make('jwks'),
      sessions: make('sessions'),
      password: make('password'),
      me: make('me'),
    }

    // Least privilege, listed per function: the DynamoDB calls it makes, and KMS:
    // only login and token sign: the active key, and a key a rotation deploy applied
    // half-way may still (or already) sign with.
    for (const [name, methods] of Object.entries(STORE_USE)) {
      const fn = this.functions[name as keyof typeof this.functions]
      grantStore(fn, this.table, methods)
    }
    const signingIds = [...new Set([activeId, ...(props.transitionSigningKeys ?? [])])]
    const signingArns = signingIds.flatMap((id) => (keys[id] ? [keys[id].keyArn] : []))
    const envelopeSigningIds = signingIds.filter((id) => !keys[id])
    // Exactly what functions/adapters/kms-signer.ts sends: a SHA-256 digest, the key's algorithm.
    const signRequest = {
      StringEquals: {
        'kms:SigningAlgorithm': KMS_SIGNING_ALGORITHMS[this.algorithm],
        'kms:MessageType': 'DIGEST',
      },
    }
    for (const fn of [this.functions.login, this.functions.token]) {
      if (signingArns.length > 0) {
        fn.allow(['kms:Sign'], signingArns, signRequest)
        // The active key's `kid`, read at cold start.
        fn.allow(['kms:GetPublicKey'], signingArns)
      }
      // Envelope keys: unwrap (once per container) only the keys it may sign with.
      if (this.envelopeSigning) {
        this.envelopeSigning.grantSign(fn, envelopeSigningIds)
        grantStore(fn, this.table, ['findKeyPair', 'createKeyPair'])
      }
      // Exactly what functions/adapters/dpop.ts sends to derive the nonce key.
      if (this.dpopNonceKey) {
        fn.allow(['kms:GenerateMac'], [this.dpopNonceKey.keyArn], {
          StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' },
        })
      }
    }
    // Only the token function seals (rotation) and opens (grace replay) grace children.
    this.functions.token.allow(['kms:GenerateDataKey', 'kms:Decrypt'], [this.graceKey.keyArn])
    // JWKS publishes every listed key. By tag too: a deploy that adds a key may start the
    // function that lists it before the policy naming it has reached IAM, and a deploy that
    // removes one may run the function that still lists it under the policy that no longer
    // names it. The tag reaches only public keys of this service's keys.
    const listedKmsKeys = Object.values(keys).map((key) => key.keyArn)
    if (listedKmsKeys.length > 0) this.functions.jwks.allow(['kms:GetPublicKey'], listedKmsKeys)
    // Envelope keys' public keys are in the table: jwks reads them, and generates the pair
    // of a key it publishes first; it can never unwrap one. In every mode and by tag, as for
    // GetPublicKey: the deploy that adds the first envelope key may run the jwks function
    // that lists it under the policy from before, and that key is created by this deploy.
    // Only the envelope keys' items (their partition keys), never a session or a user.
    this.functions.jwks.allow(['dynamodb:GetItem', 'dynamodb:PutItem'], [this.table.tableArn], {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [itemKey.signingKey('*').pk] },
    })
    this.functions.jwks.allow(
      ['kms:GenerateDataKeyPairWithoutPlaintext'],
      [Stack.of(this).formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      {
        StringEquals: {
          [`aws:ResourceTag/${SIGNING_KEY_TAG}`]: keyTag,
          ...envelopeContextConditions(keyTag, 'any'),
          'kms:DataKeyPairSpec': keyPairSpec(this.algorithm),
        },
      },
    )
    this.functions.jwks.allow(
      ['kms:GetPublicKey'],
      [Stack.of(this).formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      { StringEquals: { [`aws:ResourceTag/${SIGNING_KEY_TAG}`]: keyTag } },
    )
    Validations.of(this.functions.jwks.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
      reason:
        "kms:GetPublicKey, and GenerateDataKeyPairWithoutPlaintext (which never yields a private key in plain), only on keys tagged as this service's signing keys: a key is usable from the deploy that creates it until after the deploy that removes it, whatever order CloudFormation and IAM apply the changes in.",
    })

    if (authorizerKind === 'lambda') {
      this.tokenAuthorizer = new TokenAuthorizer(this, 'Authorizer', {
        ...props.authorizerSettings,
        issuer: this.issuer,
        clients: props.clients,
        ...(props.tokenBackdateSeconds !== undefined && {
          tokenBackdateSeconds: props.tokenBackdateSeconds,
        }),
        strict,
        table: this.table,
        ...(props.authorizerCacheTtl !== undefined && {
          resultsCacheTtl: props.authorizerCacheTtl,
        }),
        logRetention,
        removalPolicy,
      })
      this.routeAuthorizer = this.tokenAuthorizer.authorizer
    } else {
      if (props.authorizerCacheTtl !== undefined) {
        throw new Error('TokenService: authorizerCacheTtl applies to the Lambda authorizer only')
      }
      this.routeAuthorizer = new HttpJwtAuthorizer(JWT_AUTHORIZER_ID, this.issuer, {
        jwtAudience: audiences
          ? checkedAudiences(audiences, props.clients)
          : [...new Set(props.clients.map((client) => client.audience))],
        identitySource: ['$request.header.Authorization'],
      })
    }

    const integrations = new Map<HttpFunction, HttpLambdaIntegration>()
    const integrationOf = (name: HttpFunction) => {
      let integration = integrations.get(name)
      if (!integration) {
        const fn = this.functions[name]
        integration = new HttpLambdaIntegration(`${name}-integration`, fn.function, {
          timeout: DEFAULTS.integrationTimeout,
        })
        integrations.set(name, integration)
      }
      return integration
    }
    // JWKS and the discovery documents.
    const discoveryRoutes: apigwv2.HttpRoute[] = []
    // The stage must wait for a route its settings name. With the native JWT authorizer,
    // which itself waits for the stage, a bearer route cannot come first: /me/password then
    // has the stage-wide limit (and the per-username back-off) only.
    const throttledRoutes = PASSWORD_ROUTES.filter(
      (routeKey) =>
        authorizerKind !== 'jwt' ||
        ROUTES.find((route) => `${route.method} ${route.path}` === routeKey)?.auth !== 'bearer',
    )
    for (const route of ROUTES) {
      const [created] = this.api.addRoutes({
        path: route.path,
        methods: [apigwv2.HttpMethod[route.method]],
        integration: integrationOf(route.function),
        ...(route.auth === 'bearer' && { authorizer: this.routeAuthorizer }),
      })
      if (!created) continue
      if (route.auth === 'none') {
        Validations.of(created).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            'Public OAuth endpoint by design: /login authenticates by password, /token by the refresh token (RFC 6749 §6, public clients), /revoke by the token it revokes (RFC 7009), and JWKS/discovery publish public keys and metadata.',
        })
      }
      if (throttledRoutes.includes(`${route.method} ${route.path}`)) {
        // Route settings name a route key that must exist before the stage refers to it.
        this.stage.node.addDependency(created)
      }
      if (route.function === 'jwks') discoveryRoutes.push(created)
    }
    if (authorizerKind === 'jwt') {
      this.#awaitDiscovery(discoveryRoutes, domainResources, props)
    }
    const cfnStage = this.stage.node.defaultChild as apigwv2.CfnStage
    // A map of route keys: CDK passes it through as is, so it takes CloudFormation's casing.
    cfnStage.routeSettings = Object.fromEntries(
      throttledRoutes.map((routeKey) => [
        routeKey,
        {
          ThrottlingRateLimit: loginThrottle.rateLimit,
          ThrottlingBurstLimit: loginThrottle.burstLimit,
        },
      ]),
    )

    if (eventBus) {
      this.securityEvents = new SecurityEvents(this, 'SecurityEvents', {
        table: this.table,
        settings: values,
        removalPolicy,
        logRetention,
      })
    }

    const allFunctions: Record<string, TokenFunction> = { ...this.functions }
    if (this.tokenAuthorizer) allFunctions.authorizer = this.tokenAuthorizer.handler
    if (this.securityEvents) allFunctions.forwarder = this.securityEvents.forwarder
    this.monitoring = new TokenServiceMonitoring(this, 'Monitoring', {
      api: this.api,
      functions: Object.fromEntries(
        Object.entries(allFunctions).map(([name, fn]) => [name, fn.function]),
      ),
      // The HTTP functions log a KMS fault as `{"detail":"kms Sign failed: ...","cause":...}`;
      // a KMS fault in the authorizer fails the invocation and shows as a Lambda error.
      kmsCallerLogs: [this.functions.login, this.functions.token, this.functions.jwks].map(
        (fn) => fn.logGroup,
      ),
      table: this.table,
      algorithm: this.algorithm,
      ...(props.alarmTopic && { alarmTopic: props.alarmTopic }),
      ...(this.securityEvents && {
        securityEvents: {
          forwarder: this.securityEvents.forwarder.function,
          deadLetterQueue: this.securityEvents.deadLetterQueue,
        },
      }),
    })
  }

  /**
   * API Gateway reads `{issuer}/.well-known/openid-configuration` (and the JWKS it names)
   * when it creates a JWT authorizer, and refuses an issuer it cannot read ("Invalid
   * issuer"; aws-cdk issue 28061). So the authorizer waits for what serves them: the
   * discovery routes with their integration and invoke permissions, the jwks function
   * with its role, the stage (created after those routes, so its first deployment has
   * them) and, with a custom domain, the domain, its API mapping and DNS records. The
   * bearer routes wait for the authorizer; the stage waits for no bearer route.
   */
  #awaitDiscovery(
    discoveryRoutes: readonly apigwv2.HttpRoute[],
    domainResources: readonly Construct[],
    props: TokenServiceProps,
  ): void {
    for (const route of discoveryRoutes) this.stage.node.addDependency(route)
    const authorizer = this.api.node.findChild(JWT_AUTHORIZER_ID)
    authorizer.node.addDependency(
      this.functions.jwks,
      ...discoveryRoutes,
      this.stage,
      ...domainResources,
    )
    // A DNS record outside the stack, or an issuer served elsewhere, cannot be waited for.
    const outside =
      props.issuer !== undefined && props.issuer !== this.url
        ? `the issuer ${this.issuer} is not this API's address`
        : props.domain && !props.domain.hostedZone
          ? `the DNS record of ${props.domain.domainName} is not in this stack (no hostedZone)`
          : undefined
    if (outside) {
      Annotations.of(this).addWarningV2(
        'token-service:jwt-authorizer-issuer',
        `authorizer "jwt": API Gateway reads ${this.issuer}/.well-known/openid-configuration when it creates the authorizer, and ${outside}. On a new stack, deploy with -c authorizer=lambda first, make that address serve this API, then deploy with -c authorizer=jwt (docs/operations.md "Authorizer options").`,
      )
    }
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
  if (value.failureWindowSeconds < value.maxSeconds) {
    throw new Error(
      `${prop('failureWindowSeconds')} (${value.failureWindowSeconds}) must be at least loginBackoff.maxSeconds (${value.maxSeconds}): a failure must not be forgotten during its own wait`,
    )
  }
  return environment
}

function corsFor(clients: readonly ClientConfig[]): Partial<apigwv2.HttpApiProps> {
  const origins = [...new Set(clients.flatMap((client) => client.allowed_origins ?? []))]
  if (origins.length === 0) return {}
  return {
    corsPreflight: {
      allowOrigins: origins,
      // Cookie-mode clients send their refresh-token cookie cross-origin.
      allowCredentials: CORS.allowCredentials,
      allowMethods: CORS.allowMethods.map((method) => apigwv2.CorsHttpMethod[method]),
      allowHeaders: CORS.allowHeaders.map((header) => header.toLowerCase()),
      exposeHeaders: CORS.exposeHeaders.map((header) => header.toLowerCase()),
      maxAge: Duration.seconds(CORS.maxAgeSeconds),
    },
  }
}

/** Same rule as functions/config.ts, plus https: verifiers (and API Gateway) need it. */
function assertIssuer(issuer: string): void {
  if (Token.isUnresolved(issuer)) return
  const refuse = () =>
    new Error(
      `TokenService: issuer must be an https URL with no query, fragment or trailing slash, got "${issuer}"`,
    )
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw refuse()
  }
  if (url.protocol !== 'https:' || url.search || url.hash || issuer.endsWith('/')) throw refuse()
}
