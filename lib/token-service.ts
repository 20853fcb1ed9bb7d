import { Duration, Stack } from 'aws-cdk-lib'
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type * as kms from 'aws-cdk-lib/aws-kms'
import type * as logs from 'aws-cdk-lib/aws-logs'
import type * as synthetics from 'aws-cdk-lib/aws-synthetics'
import { Construct } from 'constructs'
import { HTTP_FUNCTIONS, type HttpFunction, ROUTES } from '../functions/routes.js'
import type { EnvelopeSigning } from './envelope-signing.js'
import { ForkDetection } from './fork-detection.js'
import { TokenServiceMonitoring } from './monitoring.js'
import { SecurityEvents } from './security-events.js'
import type { SigningAlgorithm } from './signing-keys.js'
import type { TokenAuthorizer } from './token-authorizer.js'
import type { TokenFunction } from './token-function.js'
import { addRoutes, buildApi, buildRouteAuthorizer } from './token-service-api.js'
import { buildCanary } from './token-service-canary.js'
import type { ServiceEdge } from './token-service-edge.js'
import { buildFunctions, functionSettings } from './token-service-functions.js'
import { buildKeys } from './token-service-keys.js'
import { resolveProps, type TokenServiceProps } from './token-service-props.js'
import { buildTable } from './token-service-table.js'

export type { SigningAlgorithm, SigningKeySpec, SigningMode } from './signing-keys.js'
export { SIGNING_KEY_TAG } from './token-service-keys.js'
export {
  type AuthorizerKind,
  accessLogGroupName,
  type CustomDomainProps,
  type LoginBackoffProps,
  type SecurityEventsProps,
  type ThrottleProps,
  type TokenServiceProps,
} from './token-service-props.js'

/**
 * The token service (docs/design.md): one DynamoDB table, the KMS signing keys, the
 * login/token/revoke/jwks/sessions/me functions, the authorizer, the HTTP API
 * in front of them, and the alarms and dashboard that watch them.
 *
 * It composes, as an aws-solutions-constructs pattern does: `resolveProps` checks
 * every prop and applies every default before anything is built
 * (lib/token-service-props.ts), then builders add the resources to this scope. The
 * issuer is the seam: API, then functions, then routes (lib/token-service-api.ts).
 */
export class TokenService extends Construct {
  /**
   * The table: an `AWS::DynamoDB::Table` with one region; with `regions`, the global
   * table in the primary region's stack and this region's replica elsewhere.
   */
  public readonly table: dynamodb.ITable
  public readonly algorithm: SigningAlgorithm
  /** Every KMS signing key (`kms` mode), by its `id`. */
  public readonly signingKeys: Readonly<Record<string, kms.IKey>>
  /** The active key when it is a KMS key; `undefined` when it is an envelope key. */
  public readonly activeKey?: kms.IKey
  public readonly activeKeyAlias?: kms.Alias
  /** The KMS keys that are listed but do not sign. */
  public readonly retiringKeys: readonly kms.IKey[]
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
  /** The synthetic check of discovery and JWKS; `undefined` without `canary`. */
  public readonly canary?: synthetics.Canary
  /** CloudFront and WAF in front of the API, and the secret header; `undefined` without `edge`. */
  public readonly edge?: ServiceEdge
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
  /** With `failover: 'adopt'`: the fork consumer on the table's stream (docs/multi-region.md). */
  public readonly forkDetection?: ForkDetection

  constructor(scope: Construct, id: string, props: TokenServiceProps) {
    super(scope, id)
    // Every check first: a bad prop fails here, before any resource exists.
    const resolved = resolveProps(props, { stackName: Stack.of(this).stackName, id })
    this.algorithm = resolved.algorithm

    this.table = buildTable(this, resolved)
    const keys = buildKeys(this, resolved, this.table)
    this.signingKeys = keys.signingKeys
    if (keys.activeKey) this.activeKey = keys.activeKey
    if (keys.activeKeyAlias) this.activeKeyAlias = keys.activeKeyAlias
    this.retiringKeys = keys.retiringKeys
    if (keys.envelopeSigning) this.envelopeSigning = keys.envelopeSigning
    this.graceKey = keys.graceKey
    if (keys.dpopNonceKey) this.dpopNonceKey = keys.dpopNonceKey

    // The seam: the API fixes the issuer, the functions and the authorizer take it,
    // the routes join them.
    const api = buildApi(this, resolved)
    this.api = api.api
    this.stage = api.stage
    this.accessLogs = api.accessLogs
    if (api.domainName) this.domainName = api.domainName
    this.url = api.url
    this.issuer = api.issuer

    if (api.edge) this.edge = api.edge
    const parts = {
      issuer: this.issuer,
      table: this.table,
      keys,
      ...(api.edge && { edge: api.edge }),
    }
    const settings = functionSettings(resolved, parts)
    this.functions = buildFunctions(this, resolved, settings, parts)
    const routeAuthorizer = buildRouteAuthorizer(this, resolved, {
      ...parts,
      ...(api.edge && { requestOrigin: api.edge.url }),
    })
    if (routeAuthorizer.tokenAuthorizer) this.tokenAuthorizer = routeAuthorizer.tokenAuthorizer
    this.routeAuthorizer = routeAuthorizer.authorizer
    addRoutes(this, resolved, api, this.functions, routeAuthorizer)

    if (resolved.eventBus) {
      this.securityEvents = new SecurityEvents(this, 'SecurityEvents', {
        table: this.table,
        settings,
        removalPolicy: resolved.removalPolicy,
        logRetention: resolved.logRetention,
        ...(resolved.regions && {
          region: { name: Stack.of(this).region, primary: !resolved.regions.primaryKeys },
        }),
      })
    }

    if (resolved.regions?.failover === 'adopt') {
      this.forkDetection = new ForkDetection(this, 'ForkDetection', {
        table: this.table,
        settings,
        regions: resolved.regions.all,
        removalPolicy: resolved.removalPolicy,
        logRetention: resolved.logRetention,
      })
    }

    const allFunctions: Record<string, TokenFunction> = { ...this.functions }
    if (this.tokenAuthorizer) allFunctions.authorizer = this.tokenAuthorizer.handler
    if (this.securityEvents) allFunctions.forwarder = this.securityEvents.forwarder
    // The fork consumer is observed like the others, but kept out of the per-request alarms
    // (CloudWatch takes 10 metrics in one alarm's math; it serves no request).
    if (this.forkDetection) this.forkDetection.consumer.observe(resolved)
    for (const [name, fn] of Object.entries(allFunctions)) {
      fn.observe(resolved)
      fn.reserve(resolved.reservedConcurrency[name as keyof typeof resolved.reservedConcurrency])
    }
    const canaryEvery =
      resolved.canaryEveryMinutes === undefined
        ? undefined
        : Duration.minutes(resolved.canaryEveryMinutes)
    if (canaryEvery) this.canary = buildCanary(this, { issuer: this.issuer, every: canaryEvery })
    this.monitoring = new TokenServiceMonitoring(this, 'Monitoring', {
      ...(this.canary && canaryEvery && { canary: { canary: this.canary, every: canaryEvery } }),
      api: this.api,
      functions: Object.fromEntries(
        Object.entries(allFunctions).map(([name, fn]) => [name, fn.function]),
      ),
      timeouts: Object.fromEntries(
        Object.entries(allFunctions).map(([name, fn]) => [name, fn.timeout]),
      ),
      // The HTTP functions whose rows use a key log a KMS fault as
      // `{"detail":"kms Sign failed: ...","cause":...}`; the authorizer uses none.
      kmsCallerLogs: (Object.keys(HTTP_FUNCTIONS) as HttpFunction[])
        .filter((name) => HTTP_FUNCTIONS[name].kms.length > 0)
        .map((name) => this.functions[name].logGroup),
      table: this.table,
      algorithm: this.algorithm,
      ...(resolved.alarmTopic && { alarmTopic: resolved.alarmTopic }),
      thresholds: resolved.alarmThresholds,
      routes: {
        stage: this.stage,
        routes: ROUTES,
        passwordRoutes: ['POST /login', 'POST /me/password'],
      },
      accessLogs: this.accessLogs,
      ...(this.securityEvents && {
        securityEvents: {
          forwarder: this.securityEvents.forwarder.function,
          deadLetterQueue: this.securityEvents.deadLetterQueue,
        },
      }),
      ...(this.forkDetection && { forkDeadLetters: this.forkDetection.deadLetterQueue }),
    })
  }
}
